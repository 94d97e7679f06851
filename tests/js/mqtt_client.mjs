// MQTT.js in Node as a test client: connects to the URL given (mqtt:// for TCP, ws:// for WebSocket, mqtts:// and
// wss:// over TLS, trusting the PEM file caFile and sending certFile/keyFile as client certificate when given),
// runs one scenario of scenario.js and prints its result as one JSON object. pytest (tests/mqtt_ws) runs it:
//
//   node mqtt_client.mjs '{"scenario": "publish", "url": "ws://127.0.0.1:8083/mqtt", "protocolVersion": 5,
//                          "username": "root", "password": "root", "messages": [{"topic": "t", "payload": "p", "qos": 1}]}'
import { readFileSync } from 'node:fs';
import mqtt from 'mqtt';
import './scenario.js';

const options = JSON.parse(process.argv[2]);
const files = { ca: options.caFile, cert: options.certFile, key: options.keyFile };
options.tls = Object.fromEntries(Object.entries(files).filter(([, path]) => path).map(
  ([name, path]) => [name, readFileSync(path)]));
const deadline = setTimeout(() => {
  console.error('the scenario did not finish in time');
  process.exit(1);
}, options.timeoutMs ?? 20000);
const result = await globalThis.runMqttScenario(mqtt, options);
clearTimeout(deadline);
console.log(JSON.stringify(result));
