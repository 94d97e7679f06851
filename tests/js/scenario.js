// The MQTT.js test scenarios, shared by Node (mqtt_client.mjs) and a browser page (browser_client.mjs): a
// plain script with no imports, which defines globalThis.runMqttScenario(mqtt, options) -> result.
//
// Every scenario connects first (without reconnecting) and records the CONNACK, or the connection error with
// its code, and every packet the server sent; a scenario is one entry of SCENARIOS, so new ones (subscribe
// and receive) are one function each.
globalThis.runMqttScenario = async function runMqttScenario(mqtt, options) {
  const result = { scenario: options.scenario, connack: null, error: null, published: [], received: [] };
  const describe = (error) => ({ message: error.message, code: error.code ?? null });
  // Resolves when the connection is closed, whoever closed it: a scenario waits on it besides its own steps,
  // since MQTT.js keeps an unacknowledged publish pending for a reconnect that never comes (reconnectPeriod 0).
  const CLOSED = { message: 'the connection was closed', code: 'closed' };
  let markClosed;
  const closed = new Promise((resolve) => { markClosed = resolve; });

  const SCENARIOS = {
    // Connect only: the CONNACK (or the refusal) is the result.
    async connect() {},

    // Publish each message in turn, waiting until MQTT.js considers it delivered (QoS 0: written, QoS 1:
    // PUBACK, QoS 2: PUBCOMP), and record its packet id or its error.
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

    // Subscribe to options.filter at options.subscribeQos, publish options.messages, and record every message
    // delivered (topic, payload, QoS, retain flag) until options.messages.length arrived or 10 s passed.
    async echo(client) {
      result.deliveries = [];
      const arrived = new Promise((resolve) => {
        client.on('message', (topic, payload, packet) => {
          result.deliveries.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain });
          if (result.deliveries.length >= options.messages.length) resolve();
        });
      });
      const granted = await client.subscribeAsync(options.filter, { qos: options.subscribeQos });
      result.granted = granted.map((entry) => entry.qos);
      await SCENARIOS.publish(client);
      await Promise.race([arrived, closed, new Promise((resolve) => setTimeout(resolve, 10000))]);
    },
  };

  const scenario = SCENARIOS[options.scenario];
  if (scenario === undefined) {
    throw new Error(`unknown scenario ${options.scenario}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  }

  const client = await new Promise((resolve) => {
    const connecting = mqtt.connect(options.url, {
      clientId: options.clientId ?? `mqttjs-${Math.random().toString(16).slice(2, 10)}`,
      username: options.username,
      password: options.password,
      protocolVersion: options.protocolVersion ?? 4,
      protocolId: options.protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
      clean: true,
      keepalive: 60,
      reconnectPeriod: 0,
      connectTimeout: 10000,
      ...(options.tls ?? {}),  // ca, cert, key of a TLS connection (Node only: mqtt_client.mjs reads the files)
    });
    // Every packet from the server, in order: the acknowledgements a test checks.
    connecting.on('packetreceive', (packet) => {
      result.received.push({ cmd: packet.cmd, messageId: packet.messageId ?? null,
                             reasonCode: packet.reasonCode ?? packet.returnCode ?? null });
    });
    connecting.once('connect', (connack) => {
      result.connack = {
        sessionPresent: connack.sessionPresent,
        code: connack.reasonCode ?? connack.returnCode ?? 0,
        properties: connack.properties ?? null,
      };
      resolve(connecting);
    });
    connecting.once('error', (error) => {
      result.error = describe(error);
      connecting.end(true);
      resolve(null);
    });
    connecting.on('close', () => {
      markClosed(CLOSED);
      resolve(null);
    });
  });
  if (client !== null) {
    await scenario(client);
    // A clean DISCONNECT, or, when the server closed the connection, only dropping the client's state.
    await Promise.race([client.endAsync(), closed]);
    client.end(true);
  }
  return result;
};
