#!/usr/bin/env node
// A socket.io@4 server (allowEIO3) that behaves like the Cognigy Socket.IO Endpoint
// (docs/protocol.md §1.2-1.4): reference peer for finalping's own client.
//
// usage: node node-server.js [--outputs N] [--delay-ms N] [--ping-interval-ms N]
//                            [--ping-timeout-ms N] [--max-lifetime-s N]
//
// Listens on 127.0.0.1, ephemeral port. First stdout line: `listening on http://127.0.0.1:<port>`.
// Per connection: session from the query (each value URI-decoded twice in all, as the
// official client encodes twice) or from the inner handshake (`?handshake=true`), then
// `endpoint-ready`. Per processInput: typingOn, N outputs (ack requested when
// emitWithAck=true), typingOff, finalPing {type:"regular"} (ack requested likewise).
// A processInput that does not match the session (URLToken/userId/sessionId, source,
// text type) gets an output {type:"error"} and finalPing {type:"error"} instead.
//
// Exits when stdin closes (so a killed parent never leaves it running) or after
// --max-lifetime-s (default 120). On exit it prints one last stdout line:
// {"stats":{connections, processInputs, outputs, finalPings, acksRequested, acksReceived,
//           ackTimeouts, protocolErrors, eio3, eio4, disconnects}}
'use strict';

const http = require('http');
const { Server } = require('socket.io');

const ACK_TIMEOUT_MS = 2000; // the real Endpoint treats a missing ack as failed after ~2 s

function parseArgs(argv) {
  const opts = { outputs: 1, delayMs: 0, pingIntervalMs: 25000, pingTimeoutMs: 20000, maxLifetimeS: 120 };
  const names = {
    '--outputs': 'outputs',
    '--delay-ms': 'delayMs',
    '--ping-interval-ms': 'pingIntervalMs',
    '--ping-timeout-ms': 'pingTimeoutMs',
    '--max-lifetime-s': 'maxLifetimeS',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    const n = Number.parseInt(argv[i + 1], 10);
    if (!key || !Number.isInteger(n) || n < 0) {
      console.error(`node-server: bad argument "${argv[i]} ${argv[i + 1]}"; known: ${Object.keys(names).join(', ')} followed by an integer >= 0`);
      process.exit(2);
    }
    opts[key] = n;
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const stats = {
  connections: 0,
  eio3: 0,
  eio4: 0,
  processInputs: 0,
  outputs: 0,
  finalPings: 0,
  acksRequested: 0,
  acksReceived: 0,
  ackTimeouts: 0,
  protocolErrors: 0,
  disconnects: 0,
};
const log = (...args) => console.error('node-server:', ...args);

let exiting = false;
function shutdown(why) {
  if (exiting) return;
  exiting = true;
  log(`exiting: ${why}`);
  process.stdout.write(JSON.stringify({ stats }) + '\n', () => process.exit(0));
}

// The official client URI-encodes each value twice; socket.io's query parsing
// (URLSearchParams) undoes one layer, this undoes the other. A value sent with a single
// encoding fails here when it contains '%' (URI malformed) and loses '+' (to a space).
function decodeSecondLayer(value, name) {
  if (typeof value !== 'string') throw new Error(`query parameter ${name} is missing`);
  return decodeURIComponent(value);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Emits an event, requesting an ack when the session asked for acks.
function emitMaybeAck(socket, session, event, payload) {
  if (!session.emitWithAck) {
    socket.emit(event, payload);
    return;
  }
  stats.acksRequested += 1;
  socket.timeout(ACK_TIMEOUT_MS).emit(event, payload, (err) => {
    if (err) {
      stats.ackTimeouts += 1;
      log(`no ack for ${event} within ${ACK_TIMEOUT_MS} ms (session ${session.sessionId})`);
    } else {
      stats.acksReceived += 1;
    }
  });
}

function checkInput(session, input) {
  if (!input || typeof input !== 'object') return 'processInput argument is not an object';
  if (input.URLToken !== session.urlToken) return `URLToken ${JSON.stringify(input.URLToken)} != query urlToken ${JSON.stringify(session.urlToken)}`;
  if (input.userId !== session.userId) return `userId ${JSON.stringify(input.userId)} != query userId ${JSON.stringify(session.userId)}`;
  if (input.sessionId !== session.sessionId) return `sessionId ${JSON.stringify(input.sessionId)} != query sessionId ${JSON.stringify(session.sessionId)}`;
  if (input.source !== 'device') return `source ${JSON.stringify(input.source)} != "device"`;
  if (typeof input.text !== 'string' && input.text !== undefined && input.text !== null) return 'text is not a string';
  return null;
}

async function handleInput(socket, session, input) {
  stats.processInputs += 1;
  const problem = checkInput(session, input);
  if (problem) {
    stats.protocolErrors += 1;
    log(`protocol error: ${problem}`);
    emitMaybeAck(socket, session, 'output', { type: 'error', data: { error: { message: problem } } });
    stats.finalPings += 1;
    emitMaybeAck(socket, session, 'finalPing', { type: 'error' });
    return;
  }
  socket.emit('typingStatus', { status: 'typingOn' });
  if (opts.delayMs > 0) await sleep(opts.delayMs);
  if (!socket.connected) return;
  for (let i = 0; i < opts.outputs; i++) {
    stats.outputs += 1;
    emitMaybeAck(socket, session, 'output', {
      type: 'output',
      data: {
        text: `You said: ${input.text == null ? '' : input.text}`,
        data: { echo: input.data === undefined ? null : input.data, emulator: 'node-server', index: i },
        source: 'bot',
        traceId: `trace-${Date.now()}-${stats.outputs}`,
      },
    });
  }
  socket.emit('typingStatus', { status: 'typingOff' });
  stats.finalPings += 1;
  emitMaybeAck(socket, session, 'finalPing', { type: 'regular' });
}

function sessionFromQuery(query) {
  return {
    sessionId: decodeSecondLayer(query.sessionId, 'sessionId'),
    urlToken: decodeSecondLayer(query.urlToken, 'urlToken'),
    userId: decodeSecondLayer(query.userId, 'userId'),
    emitWithAck: decodeSecondLayer(query.emitWithAck || 'false', 'emitWithAck') === 'true',
    testMode: decodeSecondLayer(query.testMode || 'false', 'testMode') === 'true',
  };
}

function innerHandshake(socket) {
  return new Promise((resolve, reject) => {
    socket.timeout(ACK_TIMEOUT_MS).emit('handshake', (err, answer) => {
      if (err) return reject(new Error(`no handshake answer within ${ACK_TIMEOUT_MS} ms`));
      if (!answer || typeof answer !== 'object') return reject(new Error('handshake answer is not an object'));
      resolve({
        sessionId: String(answer.sessionId),
        urlToken: String(answer.urlToken),
        userId: String(answer.userId),
        emitWithAck: answer.emitWithAck === true,
        testMode: answer.testMode === true,
      });
    });
  });
}

const httpServer = http.createServer((req, res) => {
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found\n');
});
const io = new Server(httpServer, {
  allowEIO3: true,
  pingInterval: opts.pingIntervalMs,
  pingTimeout: opts.pingTimeoutMs,
  cors: { origin: '*' },
});

io.on('connection', async (socket) => {
  stats.connections += 1;
  const eio = socket.conn.protocol === 3 ? 3 : 4;
  if (eio === 3) stats.eio3 += 1;
  else stats.eio4 += 1;
  socket.on('disconnect', () => {
    stats.disconnects += 1;
  });
  const query = socket.handshake.query;
  let session;
  try {
    session = query.handshake === 'true' ? await innerHandshake(socket) : sessionFromQuery(query);
  } catch (e) {
    stats.protocolErrors += 1;
    log(`rejecting connection: ${e.message}`);
    socket.emit('exception', { error: { message: e.message } });
    socket.disconnect(true);
    return;
  }
  log(`connected eio${eio} ${socket.request.url}`);
  log(`  session=${JSON.stringify(session.sessionId)} user=${JSON.stringify(session.userId)}`);
  socket.on('processInput', (input) => {
    handleInput(socket, session, input).catch((e) => log(`processInput failed: ${e.message}`));
  });
  socket.emit('endpoint-ready');
});

httpServer.listen(0, '127.0.0.1', () => {
  const { port } = httpServer.address();
  process.stdout.write(`listening on http://127.0.0.1:${port}\n`);
});

process.stdin.on('end', () => shutdown('stdin closed'));
process.stdin.on('error', () => shutdown('stdin error'));
process.stdin.resume();
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
setTimeout(() => shutdown(`max lifetime of ${opts.maxLifetimeS} s`), opts.maxLifetimeS * 1000).unref();
