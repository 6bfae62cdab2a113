// The Socket.IO peer of `charla bench --protocol socket-io`: what people write for browser
// chat, a server that relays each `chat` event to every other client. Listens on
// 127.0.0.1:PORT (argument, default 6040).
//
// Alone it uses the in-memory adapter (a single node). With REDIS_URL set (e.g.
// `REDIS_URL=redis://127.0.0.1:6379 node server.js 6041`) it uses @socket.io/redis-adapter,
// Socket.IO's own way to run several nodes: each broadcast is published to Redis and every
// other node sends it to its own clients, as charla's `--cluster` does (bench/cluster-peers.sh).
const { createServer } = require("node:http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 6040);
// Only the WebSocket transport, as the generator speaks it; no per-message compression,
// as charla has none; a message buffer as large as charla's line bound allows.
const http = createServer();
const io = new Server(http, {
  transports: ["websocket"],
  perMessageDeflate: false,
  maxHttpBufferSize: 1e6,
});
io.on("connection", (socket) => {
  socket.on("chat", (text) => socket.broadcast.emit("chat", text));
});

async function main() {
  const url = process.env.REDIS_URL;
  if (url) {
    const { createClient } = require("redis");
    const { createAdapter } = require("@socket.io/redis-adapter");
    // The adapter wants one connection to publish on and one subscribed.
    const pub = createClient({ url });
    const sub = pub.duplicate();
    for (const client of [pub, sub]) {
      client.on("error", (err) => console.error(`redis: ${err.message}`));
    }
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
  }
  http.listen(port, "127.0.0.1", () =>
    console.log(`listening on 127.0.0.1:${port}${url ? ` (redis adapter, ${url})` : ""}`),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
