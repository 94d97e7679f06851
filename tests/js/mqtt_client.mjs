// MQTT.js as a test client: connects to the URL given (mqtt:// for TCP, ws:// for WebSocket), runs one
// scenario and prints one JSON object with what it saw. pytest (tests/mqtt_ws) runs it as a subprocess:
//
//   node mqtt_client.mjs '{"scenario": "publish", "url": "ws://127.0.0.1:8083/mqtt", "protocolVersion": 5,
//                          "username": "root", "password": "root", "messages": [{"topic": "t", "payload": "p", "qos": 1}]}'
//
// Every scenario connects first (without reconnecting) and records the CONNACK, or the connection error
// with its code; a scenario is one entry of SCENARIOS, so new ones (subscribe and receive) are one function.
import mqtt from 'mqtt';

const options = JSON.parse(process.argv[2]);
const result = { scenario: options.scenario, connack: null, error: null, published: [], received: [] };

function describe(error) {
  return { message: error.message, code: error.code ?? null };
}

// Resolves when the connection is closed, whoever closed it: a scenario waits on it besides its own steps, since
// MQTT.js keeps an unacknowledged publish pending for a reconnect that never comes (reconnectPeriod 0).
let markClosed;
const closed = new Promise((resolve) => { markClosed = resolve; });
const CLOSED = { message: 'the connection was closed', code: 'closed' };

function connect() {
  return new Promise((resolve) => {
    const client = mqtt.connect(options.url, {
      clientId: options.clientId ?? `mqttjs-${process.pid}`,
      username: options.username,
      password: options.password,
      protocolVersion: options.protocolVersion ?? 4,
      protocolId: options.protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
      clean: true,
      keepalive: 60,
      reconnectPeriod: 0,
      connectTimeout: 10000,
    });
    // Every packet from the server, in order: the acknowledgements a test checks.
    client.on('packetreceive', (packet) => {
      result.received.push({ cmd: packet.cmd, messageId: packet.messageId ?? null,
                             reasonCode: packet.reasonCode ?? packet.returnCode ?? null });
    });
    client.once('connect', (connack) => {
      result.connack = {
        sessionPresent: connack.sessionPresent,
        code: connack.reasonCode ?? connack.returnCode ?? 0,
        properties: connack.properties ?? null,
      };
      resolve(client);
    });
    client.once('error', (error) => {
      result.error = describe(error);
      client.end(true);
      resolve(null);
    });
    client.on('close', () => {
      markClosed(CLOSED);
      resolve(null);
    });
  });
}

const SCENARIOS = {
  // Connect only: the CONNACK (or the refusal) is the result.
  async connect() {},

  // Publish each message in turn, waiting until MQTT.js considers it delivered (QoS 0: written, QoS 1: PUBACK,
  // QoS 2: PUBCOMP), and record its packet id or its error.
  async publish(client) {
    for (const message of options.messages) {
      try {
        const outcome = await Promise.race([client.publishAsync(message.topic, message.payload,
                                                                { qos: message.qos }), closed]);
        if (outcome === CLOSED) {
          result.published.push({ qos: message.qos, error: CLOSED });
          return;
        }
        result.published.push({ qos: message.qos, error: null, messageId: outcome?.messageId ?? null });
      } catch (error) {
        result.published.push({ qos: message.qos, error: describe(error) });
      }
    }
  },
};

const scenario = SCENARIOS[options.scenario];
if (scenario === undefined) {
  console.error(`unknown scenario ${options.scenario}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  process.exit(2);
}
const deadline = setTimeout(() => {
  result.error = { message: 'the scenario did not finish in time', code: 'timeout' };
  console.log(JSON.stringify(result));
  process.exit(1);
}, options.timeoutMs ?? 20000);
const client = await connect();
if (client !== null) {
  await scenario(client);
  // A clean DISCONNECT, or, when the server closed the connection, only dropping the client's state.
  await Promise.race([client.endAsync(), closed]);
  client.end(true);
}
clearTimeout(deadline);
console.log(JSON.stringify(result));
