// The charla page: the JSON protocol over /ws, one object per frame. Everything shown is
// set as text (textContent), never as HTML.
"use strict";

const params = new URLSearchParams(location.search);
let nick = params.get("nick") || "";
// The nick you chose. After a cut, the server may still hold it for your old connection
// until it notices that connection is gone; the page asks for it again meanwhile.
let wanted = nick;
// Whether the page has gone by `wanted`: only then can an old connection of its own hold it.
let heldWanted = false;
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
// Ids of the messages shown, so nothing is shown twice.
const seen = new Set();
// The last seq seen in each room, your own lines' too (their ack carries it): a reconnect
// asks for exactly what came after it.
const lastSeq = new Map();
// Rooms joined (to join again after a reconnect), and what is unread in each.
const rooms = new Set();
const unread = new Map();
const roomList = document.getElementById("rooms");
// Who is in each room: filled from `users` (asked on joining), kept by joins, leaves and
// nick changes.
const members = new Map();
const memberList = document.getElementById("members");
// Each room's operators and voiced members, and who is away: marks in the members list.
// All three come with `users`, asked on joining; then `mode` changes and `away_changed`
// keep them.
const ops = new Map();
const voiced = new Map();
const away = new Map();
// Shown while a node of a cluster cannot reach the others (`cluster`).
const banner = document.getElementById("banner");
// Each room's checks: key -> name, node, state and since when, from `status` and live
// check alerts. In a cluster each carries the `node` that runs it, and two nodes' checks
// of one name are two: the key is the node and the name then, the name alone otherwise.
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
// The log keeps this many lines, letting go of those at the end away from the reader:
// the first when reading the newest, the last when reading back. What it let go of a room
// is read again by scrolling to that end.
const KEEP_LINES = 2000;
// Rooms whose newest lines the log let go, and what came for them since, held (at most
// KEEP_LINES each) until the reader scrolls down to them; the page of newer lines being
// asked for. A `history` since an id answers at most the server's HISTORY_SINCE_MAX.
const cut = new Set();
const held = new Map();
let newerFor = null;
const SINCE_MAX = 1000;
// Where the page itself scrolled the log to after letting lines go: not the reader
// scrolling up.
let placed = null;

// Why someone left, in the words the text protocol uses: JSON's reason codes are for
// programs (`connection_lost` is "connection lost"), parting words after a colon.
function leaveWords(reason, message) {
  return reason.replace(/_/g, " ") + (message ? ": " + message : "");
}

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

// The members of the room on show: `@` operators, `+` voiced, and who is away.
function drawMembers() {
  memberList.replaceChildren();
  const [o, v] = [ops.get(room), voiced.get(room)];
  for (const n of [...(members.get(room) || [])].sort((a, b) => a.localeCompare(b))) {
    const li = document.createElement("li");
    const mark = o?.has(n) ? "@" : v?.has(n) ? "+" : "";
    if (mark) li.appendChild(span("mark", mark)).title = mark === "@" ? "operator" : "voiced";
    li.appendChild(document.createTextNode(n));
    if (n === nick) li.classList.add("you");
    if (away.has(n)) {
      li.classList.add("away");
      li.title = "away" + (away.get(n) ? ": " + away.get(n) : "");
      li.appendChild(span("away-mark", " (away)"));
    }
    memberList.appendChild(li);
  }
}

function span(cls, text) {
  const s = document.createElement("span");
  if (cls) s.className = cls;
  s.textContent = text;
  return s;
}

function drawChecks() {
  checkList.replaceChildren();
  const ours = checks.get(room);
  checkList.hidden = !ours || ours.size === 0;
  if (!ours) return;
  const cmp = (x, y) => (x < y ? -1 : x > y ? 1 : 0);
  const order = (a, b) => cmp(a.name, b.name) || cmp(a.node || "", b.node || "");
  for (const c of [...ours.values()].sort(order)) {
    const li = document.createElement("li");
    li.className = c.state;
    li.textContent = c.name + (c.node !== undefined ? " (" + c.node + ")" : "") + " " + c.state +
      (c.since ? " since " + time(c.since) : "") +
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
  const key = m.node !== undefined ? m.node + "\n" + m.check : m.check;
  const was = checks.get(r).get(key) || {};
  checks.get(r).set(key, {
    name: m.check,
    node: m.node,
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
  ops.get(r)?.delete(n);
  voiced.get(r)?.delete(n);
  if (r === room) drawMembers();
}

// A `mode` change's operators and voiced members.
function marksChanged(r, changes) {
  for (const c of changes) {
    const marks = c.mode === "o" ? ops : c.mode === "v" ? voiced : null;
    if (!marks || c.arg === undefined) continue;
    if (!marks.has(r)) marks.set(r, new Set());
    if (c.set) marks.get(r).add(c.arg); else marks.get(r).delete(c.arg);
  }
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
  newer();
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
      if (!/\b(history|me|newer)\b/.test(cls)) { unread.set(r, (unread.get(r) || 0) + 1); drawRooms(); }
    }
  }
  for (const [c, text] of parts) {
    if (li.childNodes.length) li.appendChild(document.createTextNode(" "));
    li.appendChild(span(c, text));
  }
  return li;
}

function line(cls, parts, r, m) {
  place(lineItem(cls, parts, r, m));
}

// Puts a line at the end of the log, or holds it while its room's newest lines are let go.
function place(li) {
  const r = li.dataset.room;
  if (r && cut.has(r)) { hold(r, li); return; }
  const box = log.parentElement;
  const below = box.scrollHeight - box.scrollTop - box.clientHeight;
  const stick = below <= 4;
  log.appendChild(li);
  bound(stick || box.scrollTop > below);
  if (stick) li.scrollIntoView({ block: "end" });
}

// A held message is not seen yet, so the newer lines read later bring it in its place; past
// KEEP_LINES the oldest held go: a message among them comes back with the newer lines.
function hold(r, li) {
  if (li.dataset.id !== undefined) seen.delete(Number(li.dataset.id));
  if (!held.has(r)) held.set(r, []);
  const waiting = held.get(r);
  waiting.push(li);
  if (waiting.length > KEEP_LINES) waiting.shift();
}

// Lets lines go down to KEEP_LINES, from the top or the bottom, keeping in place what is
// being read.
function bound(fromTop) {
  if (log.children.length <= KEEP_LINES) return;
  const box = log.parentElement;
  const [top, height] = [box.scrollTop, box.scrollHeight];
  if (!fromTop) trimBottom();
  if (log.children.length > KEEP_LINES) {
    trimTop();
    box.scrollTop = top - (height - box.scrollHeight);
  }
  if (box.scrollTop !== top) placed = box.scrollTop;
}

// Forgets a line let go: its message is no longer seen.
function letGo(li, gone) {
  if (li.dataset.id !== undefined) seen.delete(Number(li.dataset.id));
  if (li.dataset.room) gone.add(li.dataset.room);
  li.remove();
}

// Lets the first lines go. A room's oldest line shown is then the first left, so
// scrolling up reads them again; a page of older lines asked for before is not put in.
function trimTop() {
  const gone = new Set();
  while (log.children.length > KEEP_LINES) letGo(log.firstChild, gone);
  for (const r of gone) {
    olderDone.delete(r);
    if (olderFor?.room === r) olderFor.stale = true;
    if (cut.has(r)) anchored(r);
  }
  oldestAgain(gone);
}

// Lets the last lines of rooms go (a line of no room, such as a private message, cannot be
// read again and stays); each such room is cut until the reader scrolls down to it.
function trimBottom() {
  const gone = new Set();
  for (let li = log.lastElementChild; li && log.children.length > KEEP_LINES;) {
    const before = li.previousElementSibling;
    if (li.dataset.room) letGo(li, gone);
    li = before;
  }
  for (const r of gone) {
    if (newerFor?.room === r) newerFor.stale = true;
    if (anchored(r)) cut.add(r);
  }
  oldestAgain(gone);
}

// Whether the log still shows a message of room `r`, after which newer lines are read; a
// room with none is not cut (what it held goes), and scrolling up reads its last page.
function anchored(r) {
  if ([...log.children].some(l => l.dataset.room === r && l.dataset.id !== undefined)) return true;
  cut.delete(r);
  held.delete(r);
  return false;
}

// Each room's oldest line shown, read again from the log.
function oldestAgain(rooms) {
  for (const r of rooms) {
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
  const stale = olderFor?.stale;
  olderFor = null;
  if (stale) return;
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
  bound(false);
}

// Asks for what came after the newest line shown of the room you read, once the log is
// scrolled to its bottom, if the log let its newest lines go.
function newer() {
  const box = log.parentElement;
  if (!cut.has(room) || newerFor || box.scrollTop + box.clientHeight < box.scrollHeight - 8) return;
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  const last = [...log.children].reverse().find(li => li.dataset.room === room && li.dataset.id !== undefined);
  newerFor = { room };
  ws.send(JSON.stringify({ type: "history", room, since: Number(last.dataset.id), ref: "newer" }));
}

// Puts what came after the room's newest line shown at the end of the log; once that is all
// (a page short of SINCE_MAX), the lines held meanwhile follow, each message once, and the
// room is whole again.
function newerShown(e) {
  const asked = newerFor;
  newerFor = null;
  if (!asked || asked.stale) return;
  const r = asked.room;
  const batch = document.createDocumentFragment();
  const put = (cls, parts, lr, m) => batch.appendChild(lineItem(cls, parts, lr, m));
  for (const m of e.messages) {
    if (m.type) posted(m, r, "newer", put); else said(m, r, "newer", put);
  }
  if (e.messages.length < SINCE_MAX) {
    cut.delete(r);
    for (const li of held.get(r) || []) {
      const id = li.dataset.id;
      if (id !== undefined && seen.has(Number(id))) continue;
      if (id !== undefined) seen.add(Number(id));
      li.hidden = r !== room;
      batch.appendChild(li);
    }
    held.delete(r);
  }
  log.appendChild(batch);
  bound(true);
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
  ops.delete(r);
  voiced.delete(r);
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
      if (nick === wanted) heldWanted = true;
      for (const r of e.rooms) rooms.add(r);
      here();
      drawRooms();
      break;
    case "message": said(e, e.room, ""); break;
    case "notice": case "alert": checkSays(e.room, e, e.ts, true); posted(e, e.room, ""); break;
    case "private": privately(e, "private"); break;
    case "history":
      if (e.ref === "older") { olderShown(e); break; }
      if (e.ref === "newer") { newerShown(e); break; }
      for (const m of e.messages) {
        if (m.type) posted(m, e.room, "history"); else said(m, e.room, "history");
      }
      break;
    case "join":
      if (e.you) {
        rooms.add(e.room);
        members.set(e.room, new Set(e.members));
        // The join names the first few; `users` names everyone, and who among them is an
        // operator, voiced or away already.
        ws.send(JSON.stringify({ type: "users", room: e.room, ref: "marks" }));
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
      // Gone from the server, not only from the room: whoever takes the nick next is not away.
      if (!e.you && e.reason !== "left") { away.delete(e.nick); drawMembers(); }
      server((e.you ? "you" : e.nick) + " left " + e.room + " (" + leaveWords(e.reason, e.message) + ")", "", e.you ? "" : e.room);
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
      if (e.you) {
        if (e.message === null) away.delete(e.nick); else away.set(e.nick, e.message);
        drawMembers();
        server(e.message === null ? "you are back" : "you are away: " + e.message);
      }
      else server(e.nick + " is away" + (e.message === null ? "" : ": " + e.message));
      break;
    case "nick":
      if (e.you) { nick = e.new; wanted = e.new; heldWanted = true; here(); }
      for (const set of [...members.values(), ...ops.values(), ...voiced.values()]) {
        if (set.delete(e.old)) set.add(e.new);
      }
      if (away.has(e.old)) { away.set(e.new, away.get(e.old)); away.delete(e.old); }
      drawMembers();
      server(e.old + " is now known as " + e.new);
      break;
    case "ack": {
      const mine = pending.get(e.ref);
      pending.delete(e.ref);
      if (mine?.to) privately({ id: e.id, from: nick, to: mine.to, text: mine.text, ts: e.ts }, "private me");
      else if (mine) said({ id: e.id, seq: e.seq, from: nick, text: mine.text, action: mine.action, ts: e.ts }, mine.room, "me");
      break;
    }
    case "status":
      for (const item of e.items) checkSays(e.room, item, item.since);
      if (e.ref !== "panel") for (const item of e.items) line("notice", [["room", e.room], ["nick", "--- [" + item.source + "]"], ["", item.text]], e.room); break;
    case "users": {
      members.set(e.room, new Set(e.users));
      ops.set(e.room, new Set(e.ops));
      voiced.set(e.room, new Set(e.voiced));
      // Away is per person, not per room: the message, when known from `away_changed`, is kept.
      const gone = new Set(e.away);
      for (const n of e.users) {
        if (!gone.has(n)) away.delete(n); else if (!away.has(n)) away.set(n, "");
      }
      if (e.room === room) drawMembers();
      if (e.ref && e.ref !== "marks") server(e.room + ": " + e.users.join(", "), "", e.room);
      break;
    }
    case "rooms": server("rooms: " + e.rooms.map(r => r.name + " (" + r.members + ")").join(", ")); break;
    case "gap":
      // Not relayed: said on another node of a cluster while it was cut off; else no longer kept.
      server(e.room + ": messages " + e.from + " to " + e.to + (e.reason === "not_relayed"
        ? " were said on another node during a cluster outage and not relayed here"
        : " were said while you were away and are no longer kept"), "missed-mark gap", e.room);
      break;
    case "error":
      pending.delete(e.ref);
      // The nick chosen is held by someone else: your old connection, after a cut, if the
      // page went by it; else another person, and the page stays the guest it is.
      if (e.code === "nick_taken" && e.ref !== "reclaim" && wanted && nick !== wanted && !reclaim) {
        if (heldWanted) reclaimNick(); else wanted = "";
      }
      if (e.ref !== "reclaim") server(e.message, "error");
      break;
    case "bye": server("goodbye (" + leaveWords(e.reason) + ")"); break;
    case "mode":
      marksChanged(e.room, e.changes);
      server(e.changes.length ? e.by + " set mode " + e.modes : "no mode changed", "mode", e.room);
      break;
    case "modes":
      ops.set(e.room, new Set(e.ops));
      voiced.set(e.room, new Set(e.voiced));
      if (e.room === room) drawMembers();
      server(e.room + " modes " + e.modes + "; operators: " + (e.ops.join(", ") || "none") +
        "; voiced: " + (e.voiced.join(", ") || "none"), "mode", e.room);
      break;
    case "bans":
      server(e.bans.length ? e.room + " bans: " + e.bans.map(b => b.mask +
        (b.account ? " (account " + b.account + ")" : "") + " by " + b.by).join(", ") : e.room + ": no bans", "mode", e.room);
      break;
    case "invite":
      if (e.you) invited(e);
      else server("you invited " + e.nick + " to " + e.room, "", rooms.has(e.room) ? e.room : undefined);
      break;
    case "away_changed":
      if (e.message === null) away.delete(e.nick); else away.set(e.nick, e.message);
      drawMembers();
      break;
    case "whois":
      server(e.nick + (e.rooms.length ? " is in " + e.rooms.map(r => r.prefix + r.name).join(" ") : " is in no room") +
        "; idle " + Math.round(e.idle_ms / 1000) + "s" + (e.away ? "; away: " + e.away : "") +
        (e.account ? "; account " + e.account : ""));
      break;
    case "census":
      server(e.users + " connected (at most " + e.peak + " at once), " + e.rooms +
        (e.rooms === 1 ? " room" : " rooms"));
      break;
    case "cluster":
      banner.hidden = e.state !== "interrupted";
      banner.textContent = e.state === "interrupted" ? e.message : "";
      server(e.message, e.state === "interrupted" ? "error" : "");
      break;
  }
}

// An invitation: who invites you where, with a button that joins.
function invited(e) {
  const li = lineItem("server invite", [["time", time()], ["", e.by + " invites you to " + e.room]]);
  const join = document.createElement("button");
  join.type = "button";
  join.textContent = "join " + e.room;
  join.addEventListener("click", () => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "join", room: e.room }));
    input.focus();
  });
  li.append(" ", join);
  place(li);
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

// `#room` as the first word, or the room you talk in: the room and how many words it took.
function roomFirst(w) {
  return w[0]?.startsWith("#") ? [w[0], 1] : [room, 0];
}

// A mode change on one member or mask, in the room you talk in.
const modeOn = (letters) => (w) => ({ type: "mode", room, modes: letters, args: [w[0]] });

// The commands the page takes: /help lists exactly these. Each makes its JSON request of
// the words after it (`w`) and of the text after its first n words (`rest(n)`); a word of
// its usage in brackets may be left out, the others are needed.
const COMMANDS = [
  { usage: "/join #room [key]", about: "join a room (made if new, and you are its operator) and talk in it",
    request: (w) => ({ type: "join", room: w[0], key: w[1] }) },
  { usage: "/leave [#room] [message]", also: ["part"], about: "leave the room you talk in (or the one named)",
    request: (w, rest) => { const [r, n] = roomFirst(w); return { type: "leave", room: r, message: rest(n) || undefined }; } },
  { usage: "/nick NAME", about: "change your nick", request: (w) => ({ type: "nick", nick: w[0] }) },
  { usage: "/msg NAME text", about: "a private message to NAME only",
    request: (w, rest) => ({ type: "msg", to: w[0], text: rest(1) }) },
  { usage: "/me action", about: "an action: others see * you action",
    request: (w, rest) => ({ type: "me", room, text: rest(0) }) },
  { usage: "/topic [#room] [text]", about: "the room's topic; with text, set it",
    request: (w, rest) => { const [r, n] = roomFirst(w); return { type: "topic", room: r, text: rest(n) || undefined }; } },
  { usage: "/users [#room]", also: ["who", "names"], about: "who is in the room",
    request: (w) => ({ type: "users", room: roomFirst(w)[0] }) },
  { usage: "/rooms", also: ["list"], about: "every room and how many are in it", request: () => ({ type: "rooms" }) },
  { usage: "/whois NAME", about: "the rooms NAME is in, how long idle, and whether away",
    request: (w) => ({ type: "whois", nick: w[0] }) },
  { usage: "/lusers", about: "how many are connected (on every node of a cluster) and how many rooms there are",
    request: () => ({ type: "census" }) },
  { usage: "/away [message]", about: "mark yourself away; /away alone marks you back",
    request: (w, rest) => ({ type: "away", message: rest(0) || undefined }) },
  { usage: "/invite NICK [#room]", about: "let NICK in (operators, while the room is +i) and tell them",
    request: (w) => ({ type: "invite", nick: w[0], room: w[1] || room }) },
  { usage: "/kick NICK [reason]", about: "operators: put NICK out of the room",
    request: (w, rest) => ({ type: "kick", room, nick: w[0], reason: rest(1) || undefined }) },
  { usage: "/op NICK", about: "operators: make NICK an operator (+o)", request: modeOn("+o") },
  { usage: "/deop NICK", about: "operators: -o", request: modeOn("-o") },
  { usage: "/voice NICK", about: "operators: let NICK speak while the room is +m (+v)", request: modeOn("+v") },
  { usage: "/devoice NICK", about: "operators: -v", request: modeOn("-v") },
  { usage: "/ban MASK", about: "operators: NICK or a mask such as bo* cannot join, nor speak (+b)", request: modeOn("+b") },
  { usage: "/unban MASK", about: "operators: lift a ban (-b)", request: modeOn("-b") },
  { usage: "/mode [#room] [+-modes args]", about: "the room's modes; operators change them: +m, +i, +k key, +l N, +t, +n; +b lists the bans",
    request: (w, rest) => { const [r, n] = roomFirst(w); return { type: "mode", room: r, modes: rest(n) || undefined }; } },
  { usage: "/history [N]", about: "the last N messages of the room (all kept when no N)",
    request: (w) => w[0] === undefined || /^\d+$/.test(w[0])
      ? { type: "history", room, limit: w[0] === undefined ? undefined : Number(w[0]) } : "usage: /history [N]" },
  { usage: "/status [#room]", about: "what the room's feeds watch and check, and how it stands",
    request: (w) => ({ type: "status", room: roomFirst(w)[0] }) },
  { usage: "/ack NAME [note]", about: "check or heartbeat NAME is seen to",
    request: (w, rest) => ({ type: "ack", name: w[0], note: rest(1) || undefined }) },
  { usage: "/silence NAME DURATION [reason]", about: "NAME's changes reach only /status for a while (30m, 2h)",
    request: (w, rest) => ({ type: "silence", name: w[0], duration: w[1], reason: rest(2) || undefined }) },
  { usage: "/unsilence NAME", about: "end NAME's silence", request: (w) => ({ type: "unsilence", name: w[0] }) },
  { usage: "/help", about: "this list", request: () => null },
];

// The command `text` names and its request; `null` for /help, a sentence when it is not
// taken or lacks an argument.
function command(text) {
  const body = text.slice(1).trim();
  const words = body.split(/\s+/);
  const verb = words.shift().toLowerCase();
  const c = COMMANDS.find(c => c.usage.slice(1).split(" ")[0] === verb || c.also?.includes(verb));
  if (!c) return "unknown command /" + verb + "; /help lists those the page takes";
  const needed = c.usage.replace(/\[[^\]]*\]/g, "").trim().split(/\s+/).length - 1;
  if (words.length < needed || (needed && !words[0])) return "usage: " + c.usage;
  // The text after the verb and n words, as typed.
  const rest = (n) => words.length > n ? body.replace(new RegExp("^(\\S+\\s+){" + (n + 1) + "}"), "") : "";
  return c.request(words[0] ? words : [], rest);
}

function help() {
  server("commands the page takes (a line not starting with / is said in the room; // says one that does):", "help");
  for (const c of COMMANDS) {
    const also = c.also ? " (or " + c.also.map(a => "/" + a).join(", ") + ")" : "";
    server(c.usage + also + " — " + c.about, "help");
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
    newerFor = null;
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
    if (typeof req === "string") { server(req, "error"); return; }
    if (req === null) { help(); remember(text); return; }
    if (req.type === "me") pending.set(ref, { text: req.text, action: true, room });
    if (req.type === "msg") pending.set(ref, { text: req.text, to: req.to });
  } else {
    const t = text.startsWith("//") ? text.slice(1) : text;
    req = { type: "say", text: t, room };
    pending.set(ref, { text: t, action: false, room });
  }
  req.ref = ref;
  ws.send(JSON.stringify(req));
  remember(text);
});

// What was typed, for Up to recall.
function remember(text) {
  sent.push(text);
  recall = sent.length;
  input.value = "";
}

input.addEventListener("keydown", (ev) => {
  if (ev.key === "ArrowUp" && recall > 0) { recall--; input.value = sent[recall]; ev.preventDefault(); }
  if (ev.key === "ArrowDown" && recall < sent.length) { recall++; input.value = sent[recall] || ""; ev.preventDefault(); }
});

// Scrolled to the top or the bottom, or a wheel turned where there is nothing to scroll:
// older or newer lines.
log.parentElement.addEventListener("scroll", () => {
  const ours = placed !== null && log.parentElement.scrollTop === placed;
  placed = null;
  if (!ours) { older(); newer(); }
});
log.parentElement.addEventListener("wheel", (ev) => { if (ev.deltaY < 0) older(); else newer(); });

here();
connect();
