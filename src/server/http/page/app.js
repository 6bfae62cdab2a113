// The charla page: the JSON protocol over /ws, one object per frame. Everything shown is
// set as text (textContent), never as HTML.
"use strict";

const params = new URLSearchParams(location.search);
let nick = params.get("nick") || "";
// The nick you chose. After a cut, the server may still hold it for your old connection
// until it notices that connection is gone; the page asks for it again meanwhile.
let wanted = nick;
let reclaim = null;
const RECLAIM_EVERY_MS = 3000;
const RECLAIM_TRIES = 40;
let room = params.get("room") || "#lobby";
if (!room.startsWith("#")) room = "#" + room;

const log = document.getElementById("log");
const state = document.getElementById("state");
const where = document.getElementById("where");
const form = document.getElementById("say");
const input = document.getElementById("text");
// What was sent and not yet acknowledged, by ref.
const pending = new Map();
// Ids of the messages shown, so nothing is shown twice (your own lines come back in a
// replay: their ack has no seq).
const seen = new Set();
// The last seq seen in each room: a reconnect asks for exactly what came after it.
const lastSeq = new Map();
// Rooms joined (to join again after a reconnect), and what is unread in each.
const rooms = new Set();
const unread = new Map();
const roomList = document.getElementById("rooms");
// Who is in each room: filled from `users` (asked on joining), kept by joins, leaves and
// nick changes.
const members = new Map();
const memberList = document.getElementById("members");
// Each room's checks: name -> state and since when, from `status` and live check alerts.
const checks = new Map();
const checkList = document.getElementById("checks");
const sent = [];
let recall = 0;
let ws = null;
let backoff = 500;
let nextRef = 1;
let connectedBefore = false;
// After a reconnect, until the resuming hello is answered: what it replays was missed.
let catchingUp = false;
let missedMarked = false;
// Older history, read back a page at a time when the log is scrolled to its top: the
// oldest message shown in each room, the room (and `before`) a page is being asked for,
// and the rooms whose kept history has all been shown.
const OLDER_PAGE = 50;
const oldest = new Map();
let olderFor = null;
const olderDone = new Set();
// The log keeps this many lines, letting the first go; what it let go of a room is read
// again by scrolling up.
const KEEP_LINES = 2000;
// Where the page itself scrolled the log to after letting lines go: not the reader
// scrolling up.
let placed = null;

function time(ts) {
  const d = ts ? new Date(ts) : new Date();
  return d.toTimeString().slice(0, 5);
}

// The rooms, the one you talk in marked, each with what is unread in it.
function drawRooms() {
  roomList.replaceChildren();
  for (const r of [...rooms].sort()) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("aria-current", r === room ? "true" : "false");
    const name = document.createElement("span");
    name.textContent = r;
    const count = document.createElement("span");
    count.className = "unread";
    const n = unread.get(r) || 0;
    count.textContent = n ? String(n) : "";
    if (n) count.setAttribute("aria-label", n + " unread");
    button.append(name, count);
    button.addEventListener("click", () => { switchTo(r); input.focus(); });
    li.appendChild(button);
    roomList.appendChild(li);
  }
}

function drawMembers() {
  memberList.replaceChildren();
  for (const n of [...(members.get(room) || [])].sort((a, b) => a.localeCompare(b))) {
    const li = document.createElement("li");
    li.textContent = n;
    if (n === nick) li.className = "you";
    memberList.appendChild(li);
  }
}

function drawChecks() {
  checkList.replaceChildren();
  const ours = checks.get(room);
  checkList.hidden = !ours || ours.size === 0;
  if (!ours) return;
  for (const [name, c] of [...ours].sort()) {
    const li = document.createElement("li");
    li.className = c.state;
    li.textContent = name + " " + c.state + (c.since ? " since " + time(c.since) : "") +
      (c.uptime !== undefined ? " · " + c.uptime / 10 + "% up in 24h" : "") +
      (c.acked ? " · acknowledged by " + c.acked : "") + (c.silenced ? " · silenced" : "");
    if (c.responses) li.appendChild(chart(c.responses));
    checkList.appendChild(li);
  }
}

// A check's mean response time per bucket over the last hours (its status item's
// `responses`, "12,,15,…", oldest first) as a small inline SVG line; gaps have no runs.
function chart(responses) {
  const svg = "http://www.w3.org/2000/svg";
  const values = responses.split(",").map(v => v === "" ? null : Number(v));
  const most = Math.max(1, ...values.filter(v => v !== null));
  const [w, h] = [72, 16];
  const box = document.createElementNS(svg, "svg");
  box.setAttribute("class", "chart");
  box.setAttribute("viewBox", "0 0 " + w + " " + h);
  box.setAttribute("width", w);
  box.setAttribute("height", h);
  box.setAttribute("role", "img");
  box.setAttribute("aria-label", "response time, up to " + most + " ms");
  const title = document.createElementNS(svg, "title");
  title.textContent = "response time over the last hours, up to " + most + " ms";
  box.appendChild(title);
  const step = values.length > 1 ? w / (values.length - 1) : w;
  let points = [];
  const flush = () => {
    if (points.length === 0) return;
    const line = document.createElementNS(svg, "polyline");
    line.setAttribute("points", points.length === 1 ? points[0] + " " + points[0] : points.join(" "));
    box.appendChild(line);
    points = [];
  };
  values.forEach((v, i) => {
    if (v === null) { flush(); return; }
    points.push((i * step).toFixed(1) + "," + (h - 1 - (v / most) * (h - 2)).toFixed(1));
  });
  flush();
  return box;
}

// A check not run yet when its status came: a first result that is up is not posted, so
// the page asks again for the room's status, quietly, until it knows.
const RECHECK_MS = 2000;
let recheck = null;
function recheckUnknown() {
  if (recheck) return;
  recheck = setTimeout(() => {
    recheck = null;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    for (const [r, ours] of checks) {
      if ([...ours.values()].some(c => c.state === "unknown")) ws.send(JSON.stringify({ type: "status", room: r, ref: "panel" }));
    }
  }, RECHECK_MS);
}

// A check's state as a status item (`since` when it began) or a live post (`since` when it
// was posted: a post that does not change the state, such as an acknowledgement, leaves
// it as it was) tells it.
function checkSays(r, m, since, live) {
  if (m.check === undefined || m.state === undefined) return;
  if (m.state === "unknown") recheckUnknown();
  if (!checks.has(r)) checks.set(r, new Map());
  const was = checks.get(r).get(m.check) || {};
  checks.get(r).set(m.check, {
    state: m.state,
    since: live && m.state === was.state && was.since ? was.since : since,
    acked: m.acked_by,
    silenced: m.silenced_until !== undefined,
    uptime: m.uptime_permille !== undefined ? m.uptime_permille : was.uptime,
    responses: m.responses !== undefined ? m.responses : was.responses,
  });
  if (r === room) drawChecks();
}

function memberJoined(r, n) {
  if (!members.has(r)) members.set(r, new Set());
  members.get(r).add(n);
  if (r === room) drawMembers();
}

function memberLeft(r, n) {
  members.get(r)?.delete(n);
  if (r === room) drawMembers();
}

// Makes `r` the room you read and talk in: only its lines (and those of no room) show.
function switchTo(r) {
  room = r;
  unread.delete(r);
  for (const li of log.children) li.hidden = !!li.dataset.room && li.dataset.room !== r;
  here();
  drawRooms();
  drawMembers();
  drawChecks();
}

// A line of the log, not yet placed; `m`, the message it shows, if any.
function lineItem(cls, parts, r, m) {
  const li = document.createElement("li");
  li.className = cls;
  if (m?.id !== undefined) li.dataset.id = m.id;
  if (m?.seq !== undefined) li.dataset.seq = m.seq;
  if (r) {
    li.dataset.room = r;
    if (r !== room) {
      li.hidden = true;
      // Replayed history and your own lines are not news.
      if (!/\b(history|me)\b/.test(cls)) { unread.set(r, (unread.get(r) || 0) + 1); drawRooms(); }
    }
  }
  for (const [c, text] of parts) {
    if (li.childNodes.length) li.appendChild(document.createTextNode(" "));
    const span = document.createElement("span");
    if (c) span.className = c;
    span.textContent = text;
    li.appendChild(span);
  }
  return li;
}

function line(cls, parts, r, m) {
  const box = log.parentElement;
  const stick = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  const li = lineItem(cls, parts, r, m);
  log.appendChild(li);
  if (log.children.length > KEEP_LINES) {
    const height = box.scrollHeight;
    trim();
    // What is being read stays in place.
    const top = box.scrollTop;
    if (!stick) box.scrollTop -= height - box.scrollHeight;
    if (box.scrollTop !== top) placed = box.scrollTop;
  }
  if (stick) li.scrollIntoView({ block: "end" });
}

// Lets the first lines go, down to KEEP_LINES. A message let go is no longer seen, and
// its room's oldest line shown is the first left, so scrolling up reads them again.
function trim() {
  const rooms = new Set();
  while (log.children.length > KEEP_LINES) {
    const li = log.firstChild;
    if (li.dataset.id !== undefined) seen.delete(Number(li.dataset.id));
    if (li.dataset.room) rooms.add(li.dataset.room);
    li.remove();
  }
  for (const r of rooms) {
    olderDone.delete(r);
    const first = [...log.children].find(l => l.dataset.room === r && l.dataset.seq !== undefined);
    if (first) oldest.set(r, { id: Number(first.dataset.id), seq: Number(first.dataset.seq) });
    else oldest.set(r, {});
  }
}

// Whether message `m` is new here; marks it seen. History after a reconnect that was not
// seen is marked as missed.
function fresh(m, cls) {
  if (m.id !== undefined) {
    if (seen.has(m.id)) return null;
    seen.add(m.id);
  }
  if (catchingUp && cls === "history") {
    if (!missedMarked) {
      missedMarked = true;
      server("missed while disconnected:", "missed-mark");
    }
    return cls + " missed";
  }
  return cls;
}

function saw(m, r) {
  if (m.seq !== undefined && m.seq > (lastSeq.get(r) || 0)) lastSeq.set(r, m.seq);
  // The first in the room's order: by seq, as ids need not rise in a cluster.
  if (m.seq !== undefined && m.id !== undefined && !(m.seq >= oldest.get(r)?.seq)) oldest.set(r, m);
}

// Whether `text` names `n` as a word: "hi ana." does, "banana" does not.
function names(text, n) {
  const [t, k] = [text.toLowerCase(), n.toLowerCase()];
  const part = (c) => c !== undefined && /[\p{L}\p{N}_-]/u.test(c);
  for (let i = t.indexOf(k); i >= 0; i = t.indexOf(k, i + 1)) {
    if (!part(t[i - 1]) && !part(t[i + k.length])) return true;
  }
  return false;
}

// `put` places the line: at the end of the log, or (older history) in a batch of its own.
function said(m, r, cls, put = line) {
  saw(m, r);
  cls = fresh(m, cls);
  if (cls === null) return;
  const who = m.action ? "* " + m.from : "<" + m.from + ">";
  const mentions = nick && m.from !== nick && names(m.text, nick);
  put(cls + (mentions ? " mention" : ""), [["time", time(m.ts)], ["room", r], ["nick", who], ["", m.text]], r, m);
}

function posted(m, r, cls, put = line) {
  saw(m, r);
  cls = fresh(m, cls);
  if (cls === null) return;
  const mark = m.type === "alert" ? "!!!" : ">>>";
  // Alerts and notices styled by priority (1-5): 4-5 loud, 1-2 quiet.
  const priority = m.priority >= 1 && m.priority <= 5 ? " p" + m.priority : "";
  put(cls + " " + m.type + priority, [["time", time(m.ts)], ["room", r], ["nick", mark + " [" + m.source + "]"], ["", m.text]], r, m);
}

// Asks for the page of history before the oldest message shown in the room you read,
// once the log is scrolled to its top (or cannot scroll), unless all kept is shown. A
// room all of whose lines the log let go asks for its last page.
function older() {
  const box = log.parentElement;
  const first = oldest.get(room);
  if (box.scrollTop > 8 || olderFor || olderDone.has(room) || !first) return;
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  olderFor = { room, before: first.id };
  const req = { type: "history", room, limit: OLDER_PAGE, ref: "older" };
  if (first.id !== undefined) req.before = first.id;
  ws.send(JSON.stringify(req));
}

// Puts a page of older history above the room's first line, keeping in view what was; a
// short page before a message is the start of what the server keeps, said once.
function olderShown(e) {
  const r = olderFor?.room || e.room;
  const last = olderFor && olderFor.before === undefined;
  olderFor = null;
  const batch = document.createDocumentFragment();
  const put = (cls, parts, lr, m) => batch.appendChild(lineItem(cls, parts, lr, m));
  for (const m of e.messages) {
    if (m.type) posted(m, r, "history older", put); else said(m, r, "history older", put);
  }
  if (e.messages.length < OLDER_PAGE && !last) {
    olderDone.add(r);
    put("server start", [["", "start of the history " + r + " keeps"]], r);
    batch.prepend(batch.lastChild);
  }
  const box = log.parentElement;
  const height = box.scrollHeight;
  const first = [...log.children].find(li => li.dataset.room === r) || null;
  log.insertBefore(batch, first);
  box.scrollTop += box.scrollHeight - height;
}

// A private message, to you or (`private me`) from you: shown in every room.
function privately(e, cls) {
  if (e.id !== undefined) { if (seen.has(e.id)) return; seen.add(e.id); }
  line(cls, [["time", time(e.ts)], ["nick", "*" + e.from + "* → " + e.to], ["", e.text]], undefined, e);
}

// You are no longer in `r` (you left, or were kicked).
function gone(r) {
  rooms.delete(r);
  unread.delete(r);
  members.delete(r);
  if (r === room && rooms.size) switchTo([...rooms][rooms.size - 1]);
  else drawRooms();
}

function server(text, cls, r) {
  line("server " + (cls || ""), [["time", time()], ["", text]], r);
}

function here() {
  where.textContent = (nick || "guest") + " in " + room;
}

function show(e) {
  switch (e.type) {
    case "welcome":
      if (e.ref === "resume") catchingUp = false;
      nick = e.nick;
      for (const r of e.rooms) rooms.add(r);
      here();
      drawRooms();
      if (wanted && nick !== wanted && !reclaim) reclaimNick();
      break;
    case "message": said(e, e.room, ""); break;
    case "notice": case "alert": checkSays(e.room, e, e.ts, true); posted(e, e.room, ""); break;
    case "private": privately(e, "private"); break;
    case "history":
      if (e.ref === "older") { olderShown(e); break; }
      for (const m of e.messages) {
        if (m.type) posted(m, e.room, "history"); else said(m, e.room, "history");
      }
      break;
    case "join":
      if (e.you) {
        rooms.add(e.room);
        members.set(e.room, new Set(e.members));
        // The join names the first few; `users` names everyone.
        if (e.count > e.members.length) ws.send(JSON.stringify({ type: "users", room: e.room }));
        // Joining again after a reconnect leaves you where you were reading.
        if (!catchingUp || e.room === room) switchTo(e.room);
        server("you joined " + e.room + "; here: " + e.members.join(", "), "", e.room);
      } else {
        memberJoined(e.room, e.nick);
        server(e.nick + " joined " + e.room, "", e.room);
      }
      break;
    case "leave":
      if (e.you) gone(e.room); else memberLeft(e.room, e.nick);
      server((e.you ? "you" : e.nick) + " left " + e.room + " (" + e.reason + ")" + (e.message ? ": " + e.message : ""), "", e.you ? "" : e.room);
      break;
    case "kick":
      if (e.nick === nick) gone(e.room); else memberLeft(e.room, e.nick);
      server(e.by + " kicked " + (e.nick === nick ? "you" : e.nick) + " from " + e.room + (e.reason ? " (" + e.reason + ")" : ""), "", e.nick === nick ? "" : e.room);
      break;
    case "topic":
      if (e.changed) server(e.by + (e.text === null ? " cleared the topic" : " set the topic: " + e.text), "topic", e.room);
      else server(e.text === null ? e.room + " has no topic" : "topic of " + e.room + ": " + e.text, "topic", e.room);
      break;
    case "away":
      if (e.you) server(e.message === null ? "you are back" : "you are away: " + e.message);
      else server(e.nick + " is away" + (e.message === null ? "" : ": " + e.message));
      break;
    case "nick":
      if (e.you) { nick = e.new; wanted = e.new; here(); }
      for (const set of members.values()) {
        if (set.delete(e.old)) set.add(e.new);
      }
      drawMembers();
      server(e.old + " is now known as " + e.new);
      break;
    case "ack": {
      const mine = pending.get(e.ref);
      pending.delete(e.ref);
      if (mine?.to) privately({ id: e.id, from: nick, to: mine.to, text: mine.text, ts: e.ts }, "private me");
      else if (mine) said({ id: e.id, from: nick, text: mine.text, action: mine.action, ts: e.ts }, mine.room, "me");
      break;
    }
    case "status":
      for (const item of e.items) checkSays(e.room, item, item.since);
      if (e.ref !== "panel") for (const item of e.items) line("notice", [["room", e.room], ["nick", "--- [" + item.source + "]"], ["", item.text]], e.room); break;
    case "users":
      members.set(e.room, new Set(e.users));
      if (e.room === room) drawMembers();
      if (e.ref) server(e.room + ": " + e.users.join(", "), "", e.room);
      break;
    case "rooms": server("rooms: " + e.rooms.map(r => r.name + " (" + r.members + ")").join(", ")); break;
    case "gap":
      server(e.room + ": messages " + e.from + " to " + e.to + " were said while you were away and are no longer kept", "missed-mark gap", e.room);
      break;
    case "error":
      pending.delete(e.ref);
      if (e.ref !== "reclaim") server(e.message, "error");
      break;
    case "bye": server("goodbye (" + e.reason + ")"); break;
    case "help": for (const c of e.commands) server(c.usage + " — " + c.about); break;
  }
}

// Asks for the nick you chose every few seconds while someone else holds it.
function reclaimNick() {
  server("your nick " + wanted + " is still taken (by your connection before the cut, if it was yours); you are " + nick + " until it is free", "error");
  let tries = 0;
  reclaim = setInterval(() => {
    if (nick === wanted || ++tries > RECLAIM_TRIES) { clearInterval(reclaim); reclaim = null; return; }
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "nick", nick: wanted, ref: "reclaim" }));
  }, RECLAIM_EVERY_MS);
}

function command(text) {
  const [verb, ...rest] = text.slice(1).split(" ");
  const arg = rest.join(" ").trim();
  switch (verb) {
    case "join": return { type: "join", room: arg };
    case "leave": case "part": return { type: "leave", room };
    case "nick": return { type: "nick", nick: arg };
    case "me": return { type: "me", text: arg, room };
    case "msg": { const [to, ...words] = rest; return { type: "msg", to, text: words.join(" ") }; }
    case "users": case "who": return { type: "users", room };
    case "rooms": case "list": return { type: "rooms" };
    case "history": return { type: "history", room };
    case "status": return { type: "status", room };
    case "topic": return arg ? { type: "topic", room, text: arg } : { type: "topic", room };
    case "ack": { const [name, ...note] = rest; return { type: "ack", name, note: note.join(" ") || undefined }; }
    case "silence": {
      const [name, duration, ...reason] = rest;
      return { type: "silence", name, duration, reason: reason.join(" ") || undefined };
    }
    case "unsilence": return { type: "unsilence", name: arg };
    case "help": return { type: "help" };
    default: return null;
  }
}

// Connects as `?nick=…&room=…` (the server turns it into a hello). After a reconnect it
// connects as `?nick=…&room=#lobby`, then resumes: a hello naming every room joined before
// with the last seq seen in each, answered with exactly what came after (or a `gap` for
// what is no longer kept), then `welcome`.
function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const again = connectedBefore;
  const q = new URLSearchParams({ room: again ? "#lobby" : room });
  if (wanted || nick) q.set("nick", wanted || nick);
  catchingUp = again;
  missedMarked = false;
  ws = new WebSocket(scheme + "//" + location.host + "/ws?" + q);
  ws.onopen = () => {
    state.textContent = "connected";
    backoff = 500;
    connectedBefore = true;
    if (again) {
      const since = {};
      for (const r of rooms) since[r] = lastSeq.get(r) || 0;
      ws.send(JSON.stringify({ type: "hello", since, ref: "resume" }));
    }
  };
  ws.onmessage = (m) => { try { show(JSON.parse(m.data)); } catch (err) { console.error(err); } };
  ws.onclose = (c) => {
    olderFor = null;
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
    if (req.type === "me") pending.set(ref, { text: req.text, action: true, room });
    if (req.type === "msg") pending.set(ref, { text: req.text, to: req.to });
  } else {
    const t = text.startsWith("//") ? text.slice(1) : text;
    req = { type: "say", text: t, room };
    pending.set(ref, { text: t, action: false, room });
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

// Scrolled to the top, or a wheel turned up where there is nothing to scroll: older lines.
log.parentElement.addEventListener("scroll", () => {
  const ours = placed !== null && log.parentElement.scrollTop === placed;
  placed = null;
  if (!ours) older();
});
log.parentElement.addEventListener("wheel", (ev) => { if (ev.deltaY < 0) older(); });

here();
connect();
