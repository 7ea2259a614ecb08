// The demo page: a sign-in button, the modal, and who is signed in. In the local build it
// also shows the developer panel with the SMS of the outbox, and `/?challenge=fake` gives
// the modal a stand-in challenge widget for dev/fake-captcha (`&challengeWhen=under_attack`
// shows it only when the API asks).
import { createOtpClient } from '@otp-service/client';
import { OtpSignIn, type OtpSignInProps, type SignedIn } from '@otp-service/react';
import { Suspense, lazy, useMemo, useState } from 'react';

// Only the local-run build (`--mode localrun`) has the panel: in any other mode this is
// `null` at build time, and the panel's module (script and styles) is not in the bundle.
const DevPanel = import.meta.env.MODE === 'localrun' ? lazy(() => import('./DevPanel.js')) : null;
const FakeChallenge = import.meta.env.MODE === 'localrun' ? lazy(() => import('./FakeChallenge.js')) : null;

export function App() {
  const client = useMemo(
    () => createOtpClient({ baseUrl: import.meta.env.VITE_OTP_API_URL ?? '', apiKey: import.meta.env.VITE_OTP_API_KEY }),
    [],
  );
  const params = new URLSearchParams(window.location.search);
  const locale = params.get('lang') ?? undefined;
  const challenge: OtpSignInProps['challenge'] =
    FakeChallenge && params.get('challenge') === 'fake'
      ? (props) => (
          <Suspense fallback={null}>
            <FakeChallenge {...props} />
          </Suspense>
        )
      : undefined;
  const challengeWhen = params.get('challengeWhen') === 'under_attack' ? 'under_attack' : 'always';
  const [open, setOpen] = useState(false);
  const [session, setSession] = useState<SignedIn | null>(null);

  return (
    <>
      <header className="page-header">
        <span className="brand">Acme</span>
      </header>
      <main className="page">
        <h1>Sign-in demo</h1>
        {session ? (
          <section aria-labelledby="session-title" className="card">
            <h2 id="session-title">Welcome{session.name ? `, ${session.name}` : ''}</h2>
            <p>
              Signed in as <strong data-testid="subject">{session.subject}</strong> until{' '}
              <time dateTime={session.tokenExpiresAt}>{new Date(session.tokenExpiresAt).toLocaleString()}</time>.
            </p>
            <p className="token" data-testid="token">
              {session.token}
            </p>
            <button type="button" onClick={() => setSession(null)}>
              Sign out
            </button>
          </section>
        ) : (
          <section className="card">
            <p>Sign in with a one-time code sent to your phone.</p>
            <button type="button" className="primary" onClick={() => setOpen(true)}>
              Sign in
            </button>
          </section>
        )}
      </main>
      <OtpSignIn
        client={client}
        open={open}
        askName
        {...(locale ? { locale } : {})}
        {...(challenge ? { challenge, challengeWhen } : {})}
        onClose={() => setOpen(false)}
        onSignedIn={(result) => {
          setSession(result);
          setOpen(false);
        }}
      />
      {DevPanel && (
        <Suspense fallback={null}>
          <DevPanel />
        </Suspense>
      )}
    </>
  );
}
