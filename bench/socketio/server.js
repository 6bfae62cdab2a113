// The Socket.IO peer of `charla bench --protocol socket-io`: what people write for browser
// chat, a server that relays each `chat` event to every other client. One process, the
// in-memory adapter (a single node). Listens on 127.0.0.1:PORT (argument, default 6040).
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
http.listen(port, "127.0.0.1", () => console.log(`listening on 127.0.0.1:${port}`));
