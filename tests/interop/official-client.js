#!/usr/bin/env node
// Drives the official @cognigy/socket-client against an Endpoint and reports one JSON line.
//
// usage: node official-client.js <4|5> <endpointBaseUrl> <urlToken> <turns>
//   4 = @cognigy/socket-client 4.9.2 (socket.io-client 2.x, Engine.IO 3)
//   5 = @cognigy/socket-client 5.0.0-beta.26 (socket.io-client 4.7.5, Engine.IO 4)
//   endpointBaseUrl: e.g. http://127.0.0.1:3000 (a path P makes the client use P/socket.io)
//
// Sends <turns> messages one after another; a turn is complete when its finalPing arrives.
// stdout: exactly one JSON line, {"ok":true,"turns":N,"outputs":M,"finalPings":K,...}
// or {"ok":false,"error":"...",...}; exit code 0 / 1. Never hangs: every step and the whole
// run are bounded (INTEROP_TIMEOUT_MS, default 20000 ms overall).
//
// Environment: INTEROP_TIMEOUT_MS (overall bound), INTEROP_INNER_HANDSHAKE=1 (use the
// client's enableInnerSocketHandshake: query is only handshake=true), INTEROP_USER_ID and
// INTEROP_SESSION_ID (defaults user@example.com and "session 1/emulator", which exercise
// the client's double URI encoding: %2540, %2520, %252F).
//
// The official client logs with console.log; those lines are moved to stderr so stdout
// stays machine-readable.
'use strict';

const OVERALL_TIMEOUT_MS = positiveInt(process.env.INTEROP_TIMEOUT_MS, 20000);
const CLOSE_WAIT_MS = 1000;
const INNER_HANDSHAKE = process.env.INTEROP_INNER_HANDSHAKE === '1';
const USER_ID = process.env.INTEROP_USER_ID || 'user@example.com';
const SESSION_ID = process.env.INTEROP_SESSION_ID || 'session 1/emulator';

// Keep stdout for the single result line.
const writeResult = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
console.log = (...args) => console.error(...args);
console.info = console.log;

const stats = { turns: 0, outputs: 0, finalPings: 0, outputsPerTurn: [], turnMs: [] };
let client = null;
let clientInfo = null;
let finished = false;

function positiveInt(text, fallback) {
  const n = Number.parseInt(text, 10);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

function finish(ok, error) {
  if (finished) return;
  finished = true;
  const result = ok ? { ok: true, ...stats } : { ok: false, error: String(error), ...stats };
  result.client = clientInfo;
  closeGracefully().then(() => {
    writeResult(result);
    // Exit once stdout is flushed, even if sockets or timers linger.
    process.stdout.write('', () => process.exit(ok ? 0 : 1));
  });
}

// Disconnects (41 + close) and waits, bounded, for the Engine.IO socket to close so the
// final acks and the close frame really leave the process before it exits.
function closeGracefully() {
  return new Promise((resolve) => {
    const engine = client && client.socket && client.socket.io ? client.socket.io.engine : null;
    const timer = setTimeout(resolve, CLOSE_WAIT_MS);
    if (engine && typeof engine.once === 'function' && engine.readyState !== 'closed') {
      engine.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    } else {
      clearTimeout(timer);
      setImmediate(resolve);
    }
    try {
      if (client) client.disconnect();
    } catch (e) {
      // a failing disconnect does not change the outcome
    }
  });
}

function usage(msg) {
  finish(false, `${msg}; usage: node official-client.js <4|5> <endpointBaseUrl> <urlToken> <turns>`);
}

function loadClient(major) {
  const pkg = major === '4' ? 'cognigy-client-4' : major === '5' ? 'cognigy-client-5' : null;
  if (!pkg) return null;
  const mod = require(pkg);
  const version = require(`${pkg}/package.json`).version;
  return { SocketClient: mod.SocketClient, version, pkg };
}

// Resolves on the next finalPing, counting outputs in between; rejects on error events.
function oneTurn(c, text, data, turnTimeoutMs) {
  return new Promise((resolve, reject) => {
    let outputs = 0;
    const started = Date.now();
    const cleanup = () => {
      clearTimeout(timer);
      c.off('output', onOutput);
      c.off('finalPing', onFinalPing);
    };
    const onOutput = () => {
      outputs += 1;
      stats.outputs += 1;
    };
    const onFinalPing = (payload) => {
      stats.finalPings += 1;
      cleanup();
      const type = payload && payload.type;
      if (type === 'error') {
        reject(new Error(`finalPing of type error after ${outputs} output(s)`));
        return;
      }
      resolve({ outputs, ms: Date.now() - started });
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`turn "${text}": no finalPing within ${turnTimeoutMs} ms (${outputs} output(s) seen)`));
    }, turnTimeoutMs);
    c.on('output', onOutput);
    c.on('finalPing', onFinalPing);
    c.sendMessage(text, data);
  });
}

async function main() {
  const [major, baseUrl, urlToken, turnsText] = process.argv.slice(2);
  if (!major || !baseUrl || !urlToken || !turnsText) return usage('missing arguments');
  const turns = Number.parseInt(turnsText, 10);
  if (!Number.isInteger(turns) || turns < 1 || turns > 10000) return usage(`bad <turns> "${turnsText}"`);
  let loaded;
  try {
    loaded = loadClient(major);
  } catch (e) {
    return finish(false, `cannot load the official client (run \`npm ci --prefix tests/interop\`): ${e.message}`);
  }
  if (!loaded) return usage(`bad client major "${major}" (expected 4 or 5)`);
  clientInfo = { package: '@cognigy/socket-client', version: loaded.version };

  client = new loaded.SocketClient(baseUrl, urlToken, {
    userId: USER_ID,
    sessionId: SESSION_ID,
    channel: 'load-test',
    enableInnerSocketHandshake: INNER_HANDSHAKE,
  });
  // Without an 'error' listener EventEmitter would throw on output {type:"error"}.
  client.on('error', (err) => finish(false, `endpoint sent output of type error: ${JSON.stringify(err)}`));
  client.on('exception', (err) => finish(false, `endpoint sent exception: ${JSON.stringify(err)}`));
  client.on('socket/error', (err) => finish(false, `socket error: ${JSON.stringify(err)}`));
  client.on('socket/disconnect', (reason) => {
    if (!finished) finish(false, `disconnected by peer or transport: ${reason}`);
  });

  // The official connect() has no timeout of its own for endpoint-ready.
  await client.connect();
  if (finished) return;

  const turnTimeoutMs = OVERALL_TIMEOUT_MS;
  for (let i = 1; i <= turns && !finished; i++) {
    const data = i % 2 === 0 ? { i, color: 'green' } : undefined;
    const { outputs, ms } = await oneTurn(client, `hello ${i}`, data, turnTimeoutMs);
    stats.turns += 1;
    stats.outputsPerTurn.push(outputs);
    stats.turnMs.push(ms);
  }
  finish(true);
}

// Not unref'd: keeps the process alive until finish() calls process.exit.
setTimeout(() => finish(false, `overall timeout of ${OVERALL_TIMEOUT_MS} ms`), OVERALL_TIMEOUT_MS);
process.on('uncaughtException', (e) => finish(false, `uncaught: ${e && e.stack ? e.stack : e}`));
process.on('unhandledRejection', (e) => finish(false, `unhandled: ${e && e.message ? e.message : e}`));
main().catch((e) => finish(false, e && e.message ? e.message : e));
