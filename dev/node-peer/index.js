'use strict';
// The Node stack this service replaces, as a Lambda function with a custom runtime loop:
// twilio, firebase-admin, express, helmet, cors and express-rate-limit loaded, and the
// Twilio and Firestore clients built, at init, as that stack did. scripts/bench-cold
// measures its start-up and first answer beside the Rust functions'. Never deployed.
// Codes live in memory here, like the Rust functions' memory store in the same bench.

const http = require('node:http');
const express = require('express');
const helmet = require('helmet');
const cors = require('cors');
const { rateLimit } = require('express-rate-limit');
const serverless = require('serverless-http');
const twilio = require('twilio');
const admin = require('firebase-admin');

const sms = twilio(process.env.TWILIO_ACCOUNT_SID, process.env.TWILIO_AUTH_TOKEN);
admin.initializeApp({ projectId: process.env.FIREBASE_PROJECT_ID || 'demo-otp' });
const db = admin.firestore();
const pending = new Map();
const E164 = /^\+[1-9]\d{6,14}$/;

const app = express();
app.set('trust proxy', false);
app.use(helmet());
app.use(cors({ origin: ['https://app.example.com'] }));
app.use(express.json({ limit: '4kb' }));
app.use(
  rateLimit({
    windowMs: 15 * 60 * 1000,
    limit: 5,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    keyGenerator: (req) => req.requestContext?.identity?.sourceIp ?? 'unknown',
    validate: false,
  }),
);

app.post('/api/send-otp', async (req, res) => {
  const phone = String(req.body?.phone ?? '').replace(/[\s().-]/g, '');
  if (!E164.test(phone)) return res.status(400).json({ error: { code: 'invalid_phone' } });
  const code = String(Math.floor(Math.random() * 1e6)).padStart(6, '0');
  pending.set(phone, { code, expires: Date.now() + 600_000 });
  void sms; // the SMS would go through this client: not in this benchmark
  return res.status(202).json({ status: 'pending', to: phone, channel: 'sms' });
});

app.post('/api/verify-otp', (req, res) => {
  const phone = String(req.body?.phone ?? '');
  if (!E164.test(phone)) return res.status(400).json({ error: { code: 'invalid_phone' } });
  const entry = pending.get(phone);
  void db; // the codes would live in this store: not in this benchmark
  if (!entry || entry.expires < Date.now()) return res.status(410).json({ error: { code: 'code_expired' } });
  if (entry.code !== req.body.code) return res.status(401).json({ error: { code: 'incorrect_code' } });
  pending.delete(phone);
  return res.status(200).json({ status: 'approved', to: phone });
});

const handler = serverless(app, {
  request: (request, event) => {
    request.requestContext = event.requestContext;
  },
});

// The Lambda Runtime API loop (what a managed runtime does around a handler).
const [host, port] = (process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001').split(':');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const request = http.request({ host, port, method, path, agent }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => resolve({ headers: response.headers, body: Buffer.concat(chunks).toString() }));
    });
    request.on('error', reject);
    if (body !== undefined) request.setHeader('content-type', 'application/json');
    request.end(body);
  });
}

async function loop() {
  for (;;) {
    const next = await call('GET', '/2018-06-01/runtime/invocation/next');
    const id = next.headers['lambda-runtime-aws-request-id'];
    const deadline = Number(next.headers['lambda-runtime-deadline-ms']);
    const context = { awsRequestId: id, getRemainingTimeInMillis: () => deadline - Date.now() };
    const result = await handler(JSON.parse(next.body), context);
    await call('POST', `/2018-06-01/runtime/invocation/${id}/response`, JSON.stringify(result));
  }
}

loop().catch((error) => {
  console.error(error);
  process.exit(1);
});
