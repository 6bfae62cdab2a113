// The charla page: the JSON protocol over /ws, one object per frame. Everything shown is
// set as text (textContent), never as HTML.
"use strict";

const params = new URLSearchParams(location.search);
let nick = params.get("nick") || "";
let room = params.get("room") || "#lobby";
if (!room.startsWith("#")) room = "#" + room;

const log = document.getElementById("log");
const state = document.getElementById("state");
const where = document.getElementById("where");
const form = document.getElementById("say");
const input = document.getElementById("text");
const pending = new Map();
const sent = [];
let recall = 0;
let ws = null;
let backoff = 500;
let nextRef = 1;

function time(ts) {
  const d = ts ? new Date(ts) : new Date();
  return d.toTimeString().slice(0, 5);
}

function line(cls, parts) {
  const stick = log.parentElement.scrollTop + log.parentElement.clientHeight >= log.parentElement.scrollHeight - 4;
  const li = document.createElement("li");
  li.className = cls;
  for (const [c, text] of parts) {
    if (li.childNodes.length) li.appendChild(document.createTextNode(" "));
    const span = document.createElement("span");
    if (c) span.className = c;
    span.textContent = text;
    li.appendChild(span);
  }
  log.appendChild(li);
  while (log.children.length > 2000) log.removeChild(log.firstChild);
  if (stick) li.scrollIntoView({ block: "end" });
}

function said(m, r, cls) {
  const who = m.action ? "* " + m.from : "<" + m.from + ">";
  line(cls, [["time", time(m.ts)], ["room", r], ["nick", who], ["", m.text]]);
}

function posted(m, r, cls) {
  const mark = m.type === "alert" ? "!!!" : ">>>";
  line(cls + " " + m.type, [["time", time(m.ts)], ["room", r], ["nick", mark + " [" + m.source + "]"], ["", m.text]]);
}

function server(text, cls) {
  line("server " + (cls || ""), [["time", time()], ["", text]]);
}

function show(e) {
  switch (e.type) {
    case "welcome":
      nick = e.nick;
      where.textContent = nick + " in " + room;
      break;
    case "message": said(e, e.room, ""); break;
    case "notice": case "alert": posted(e, e.room, ""); break;
    case "private": line("private", [["time", time(e.ts)], ["nick", "*" + e.from + "* → " + e.to], ["", e.text]]); break;
    case "history":
      for (const m of e.messages) {
        if (m.type) posted(m, e.room, "history"); else said(m, e.room, "history");
      }
      break;
    case "join":
      if (e.you) { room = e.room; where.textContent = nick + " in " + room; server("you joined " + e.room + "; here: " + e.members.join(", ")); }
      else server(e.nick + " joined " + e.room);
      break;
    case "leave": server((e.you ? "you" : e.nick) + " left " + e.room + " (" + e.reason + ")"); break;
    case "nick":
      if (e.you) { nick = e.new; where.textContent = nick + " in " + room; }
      server(e.old + " is now known as " + e.new);
      break;
    case "ack": {
      const text = pending.get(e.ref);
      pending.delete(e.ref);
      if (text !== undefined) said({ from: nick, text, ts: e.ts }, room, "me");
      break;
    }
    case "status": for (const item of e.items) line("notice", [["room", e.room], ["nick", "--- [" + item.source + "]"], ["", item.text]]); break;
    case "users": server(e.room + ": " + e.users.join(", ")); break;
    case "rooms": server("rooms: " + e.rooms.map(r => r.name + " (" + r.members + ")").join(", ")); break;
    case "error": pending.delete(e.ref); server(e.message, "error"); break;
    case "bye": server("goodbye (" + e.reason + ")"); break;
    case "help": for (const c of e.commands) server(c.usage + " — " + c.about); break;
  }
}

function command(text) {
  const [verb, ...rest] = text.slice(1).split(" ");
  const arg = rest.join(" ").trim();
  switch (verb) {
    case "join": return { type: "join", room: arg };
    case "leave": case "part": return { type: "leave" };
    case "nick": return { type: "nick", nick: arg };
    case "me": return { type: "me", text: arg, room };
    case "msg": { const [to, ...words] = rest; return { type: "msg", to, text: words.join(" ") }; }
    case "users": case "who": return { type: "users" };
    case "rooms": case "list": return { type: "rooms" };
    case "history": return { type: "history" };
    case "status": return { type: "status" };
    case "help": return { type: "help" };
    default: return null;
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const q = new URLSearchParams({ room });
  if (nick) q.set("nick", nick);
  ws = new WebSocket(scheme + "//" + location.host + "/ws?" + q);
  ws.onopen = () => { state.textContent = "connected"; backoff = 500; };
  ws.onmessage = (m) => { try { show(JSON.parse(m.data)); } catch (err) { console.error(err); } };
  ws.onclose = (c) => {
    state.textContent = "disconnected; reconnecting…";
    server("connection closed (" + c.code + "); reconnecting in " + Math.round(backoff / 1000) + "s", "error");
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 30000);
  };
}

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = input.value;
  if (!text.trim() || !ws || ws.readyState !== WebSocket.OPEN) return;
  const ref = "p" + nextRef++;
  let req;
  if (text.startsWith("/") && !text.startsWith("//")) {
    req = command(text);
    if (!req) { server("unknown command; /help lists them", "error"); return; }
    if (req.type === "me") pending.set(ref, "* " + req.text);
  } else {
    const t = text.startsWith("//") ? text.slice(1) : text;
    req = { type: "say", text: t, room };
    pending.set(ref, t);
  }
  req.ref = ref;
  ws.send(JSON.stringify(req));
  sent.push(text);
  recall = sent.length;
  input.value = "";
});

input.addEventListener("keydown", (ev) => {
  if (ev.key === "ArrowUp" && recall > 0) { recall--; input.value = sent[recall]; ev.preventDefault(); }
  if (ev.key === "ArrowDown" && recall < sent.length) { recall++; input.value = sent[recall] || ""; ev.preventDefault(); }
});

where.textContent = (nick || "guest") + " in " + room;
connect();
