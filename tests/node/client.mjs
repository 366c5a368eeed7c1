// The official socket.io JavaScript client (v4) against AgentHub's /agents namespace.
// Driven by tests/integration/test_realtime_node.py: the scenario name is argv[2], settings
// come as JSON in AGENTHUB_NODE_TEST, and one JSON object is printed on stdout.
import { io } from "socket.io-client";

const config = JSON.parse(process.env.AGENTHUB_NODE_TEST ?? "{}");
const scenario = process.argv[2];

function open(extra = {}) {
  return io(`${config.url}/agents`, {
    transports: config.transports ?? ["websocket"],
    reconnection: false,
    ...extra,
  });
}

function once(socket, event) {
  return new Promise((resolve) => socket.once(event, resolve));
}

function firstMatching(socket, event, predicate) {
  return new Promise((resolve) => {
    const listener = (payload) => {
      if (predicate(payload)) {
        socket.off(event, listener);
        resolve(payload);
      }
    };
    socket.on(event, listener);
  });
}

const scenarios = {
  // A bad token: the handshake is refused and connect_error carries the error object.
  async refused() {
    const socket = open({ auth: { token: config.token } });
    const err = await once(socket, "connect_error");
    socket.close();
    return { message: err.message, data: err.data ?? null, connected: socket.connected };
  },

  // Connect (auth payload or ?token=), join a room, send with an ack, hear message:new,
  // read the room back with room:sync.
  async roundtrip() {
    const socket = config.via === "query"
      ? open({ query: { token: config.token } })
      : open({ auth: { token: config.token } });
    const connected = await once(socket, "connected");
    const join = await socket.timeout(10000).emitWithAck("room:join", { roomId: config.roomId });
    const heard = firstMatching(socket, "message:new", (m) => m.body === config.body);
    const send = await socket.timeout(10000).emitWithAck("message:send", {
      roomId: config.roomId,
      body: config.body,
      clientMsgId: config.clientMsgId,
    });
    const live = await heard;
    const bad = await socket.timeout(10000).emitWithAck("message:send", "not an object");
    const sync = await socket.timeout(10000).emitWithAck("room:sync", {
      roomId: config.roomId,
      afterSeq: 0,
    });
    socket.close();
    return { connected, join, send, live, bad, sync };
  },

  // Connect with reconnection on (the client's default), say so on a line of its own, then
  // wait for the server to go away and come back (the test restarts it on the same port):
  // the disconnect reason, the second `connected`, and a room:sync on the new connection.
  async reconnect() {
    const socket = open({
      auth: { token: config.token },
      reconnection: true,
      reconnectionDelay: 200,
      reconnectionDelayMax: 1000,
    });
    const first = await once(socket, "connected");
    const lost = once(socket, "disconnect");
    process.stdout.write(JSON.stringify({ ready: true }) + "\n");
    const reason = await lost;
    const again = await once(socket, "connected");
    const sync = await socket.timeout(10000).emitWithAck("room:sync", {
      roomId: config.roomId,
      afterSeq: 0,
    });
    socket.close();
    return { first, reason, again, sync };
  },
};

const timer = setTimeout(() => {
  console.error(`scenario ${scenario} timed out`);
  process.exit(2);
}, config.timeoutMs ?? 20000);

try {
  if (!(scenario in scenarios)) throw new Error(`unknown scenario ${scenario}`);
  const result = await scenarios[scenario]();
  process.stdout.write(JSON.stringify(result) + "\n");
  clearTimeout(timer);
  process.exit(0);
} catch (err) {
  console.error(err?.stack ?? String(err));
  process.exit(1);
}
