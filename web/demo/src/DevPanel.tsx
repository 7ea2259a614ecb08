// The local run's developer panel: the SMS that the outbox holds (`GET /_dev/outbox`),
// newest first, with their real codes. Part of the local build only.
import { useEffect, useState } from 'react';

import './dev-panel.css';

interface OutboxMessage {
  to: string;
  /** `sms`, `whatsapp` or `voice` (the body is then the call's TwiML). */
  channel?: string;
  body: string;
  sentAt: string;
}

export default function DevPanel() {
  const [messages, setMessages] = useState<OutboxMessage[] | null>(null);
  const [problem, setProblem] = useState('');

  useEffect(() => {
    let stopped = false;
    async function poll() {
      try {
        const response = await fetch('/_dev/outbox', { cache: 'no-store' });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const list = (await response.json()) as OutboxMessage[];
        if (!stopped) {
          setMessages(list);
          setProblem('');
        }
      } catch (error) {
        if (!stopped) setProblem(`The outbox cannot be read (${String(error)}): with OTP_SMS=twilio it is off.`);
      }
    }
    void poll();
    const timer = setInterval(() => void poll(), 1000);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, []);

  return (
    <aside className="dev-panel" aria-labelledby="dev-panel-title">
      <h2 id="dev-panel-title">Developer panel: SMS outbox</h2>
      <p className="dev-note">Local run only. Every SMS the service sent, newest first.</p>
      {problem && <p>{problem}</p>}
      {messages && messages.length === 0 && <p>No SMS yet.</p>}
      {messages && messages.length > 0 && (
        <ol className="dev-outbox">
          {messages.slice(0, 8).map((message) => (
            <li key={`${message.sentAt}-${message.to}-${message.body}`}>
              <span className="dev-to">{message.to}</span> <span className="dev-channel">{message.channel ?? 'sms'}</span>{' '}
              <time dateTime={message.sentAt}>{message.sentAt}</time>
              <div className="dev-body">{message.body}</div>
            </li>
          ))}
        </ol>
      )}
    </aside>
  );
}
