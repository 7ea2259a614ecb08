// <OtpSignIn>: the sign-in modal. Phone number (with a country picker), then the code (by
// SMS, call or WhatsApp), then the session token handed to the host page. Every contract
// error gets its own text. The code step offers the service's other channels (`channels`
// of the send's answer): "Call me instead", "Send by WhatsApp". The device token of each
// approval is kept per number (`deviceTokenStore`) and sent with the next sends and
// verifies to that number, so that a stranger's lockout of it does not reach this device.
import {
  useCallback,
  useEffect,
  useEffectEvent,
  useId,
  useMemo,
  useRef,
  useState,
  type CSSProperties,
  type KeyboardEvent,
  type ReactNode,
} from 'react';
import {
  ChannelNotAllowedError,
  IncorrectCodeError,
  RateLimitedError,
  ServiceUnavailableError,
  isOtpError,
  keepDeviceToken,
  localStorageDeviceTokens,
  readDeviceToken,
  type Channel,
  type DeviceTokenStore,
  type OtpClient,
  type SendOtpAccepted,
  type SendOtpRequest,
  type VerifyOtpRequest,
} from '@otp-service/client';
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/min';

import { countryOfLocale, countryOptions, isCountry } from './countries.js';
import { subjectOf } from './jwt.js';
import { catalogs, languageOf, type ErrorDetail, type FailureCode, type Language, type Messages } from './messages.js';
import { styles } from './styles.js';

/** What the host page gets once the code is approved. */
export interface SignedIn {
  /** The session token (a JWT) for the host's backend. */
  token: string;
  /** The token's subject (`sub`): the E.164 number it was issued for. */
  subject: string;
  /** The number the code was sent to, in E.164. */
  to: string;
  tokenExpiresAt: string;
  /** The name typed in the optional name field, where there is one. */
  name?: string;
}

/** What the bot challenge slot is given. */
export interface ChallengeProps {
  /** Hand the widget's token over (`null` when it expired or was reset). */
  onToken: (token: string | null) => void;
  /** The modal's language, for the widget's own texts. */
  language: Language;
}

/** Colours and sizes; each sets one `--otp-*` custom property. */
export interface OtpSignInTheme {
  accent?: string;
  accentText?: string;
  background?: string;
  foreground?: string;
  muted?: string;
  border?: string;
  error?: string;
  success?: string;
  radius?: string;
  font?: string;
}

export type MessageOverrides = Partial<Omit<Messages, 'errors'>> & { errors?: Partial<Messages['errors']> };

export interface OtpSignInProps {
  /** From `createOtpClient({ baseUrl, apiKey })`. */
  client: OtpClient;
  open: boolean;
  /** Called on Escape, the close button, or the browser's own close gesture. */
  onClose: () => void;
  onSignedIn: (result: SignedIn) => void;
  /** BCP 47 tag for the texts and the SMS (`en`, `es`, `pt`, `fr`; others fall back to English). Default: the browser's. */
  locale?: string;
  /** The picker's initial country (ISO 3166-1 alpha-2). Default: the country of the browser's locale, else US. */
  defaultCountry?: string;
  /** Ask for the person's name with the number (optional to fill in); it comes back in `SignedIn.name`. */
  askName?: boolean;
  /** The bot challenge widget (Turnstile, hCaptcha, reCAPTCHA), when the API requires one. */
  challenge?: (props: ChallengeProps) => ReactNode;
  /**
   * When the widget is shown, as the service's `OTP_CAPTCHA_WHEN`: `always` (default) before
   * every send, resends included, each with a fresh token; `under_attack` only once the API
   * answers `captcha_required`. Either way, once the API has asked for a challenge, the
   * modal sends again by itself as soon as the widget hands over a token.
   */
  challengeWhen?: 'always' | 'under_attack';
  /**
   * Where the device tokens of approvals are kept, by E.164 number (sync or async). Default:
   * this browser's localStorage; `null` keeps none. A store that fails never stops a sign-in.
   */
  deviceTokenStore?: DeviceTokenStore | null | undefined;
  /** Listen for the SMS with WebOTP where the browser has it (default true). */
  webOtp?: boolean;
  messages?: MessageOverrides;
  theme?: OtpSignInTheme;
  className?: string;
}

/** The modal: nothing is rendered while `open` is false, and each opening starts afresh. */
export function OtpSignIn(props: OtpSignInProps) {
  return props.open ? <SignInDialog {...props} /> : null;
}

type Busy = 'sending' | 'verifying' | null;
type Field = 'phone' | 'code' | 'challenge';

interface Failure {
  code: FailureCode;
  detail: ErrorDetail;
  field: Field | undefined;
}

const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), iframe, [tabindex]:not([tabindex="-1"])';

function browserLocale(): string | undefined {
  return typeof navigator === 'undefined' ? undefined : navigator.language;
}

function SignInDialog(props: OtpSignInProps) {
  const { client, onClose, onSignedIn, askName = false, challenge, challengeWhen = 'always', webOtp = true } = props;
  const locale = props.locale ?? browserLocale();
  const language = languageOf(locale);
  const m = useMemo(() => mergeMessages(catalogs[language], props.messages), [language, props.messages]);
  const countries = useMemo(() => countryOptions(locale ?? language), [locale, language]);
  const deviceTokens = useMemo(
    () => (props.deviceTokenStore === undefined ? localStorageDeviceTokens() : props.deviceTokenStore),
    [props.deviceTokenStore],
  );

  const [step, setStep] = useState<'phone' | 'code' | 'done'>('phone');
  const [name, setName] = useState('');
  const [country, setCountry] = useState<string>(() => {
    const wanted = props.defaultCountry?.toUpperCase();
    return isCountry(wanted) ? wanted : (countryOfLocale(locale) ?? 'US');
  });
  const [phone, setPhone] = useState('');
  const [sent, setSent] = useState<SendOtpAccepted | null>(null);
  // The device token the last accepted send carried: its code approves only with it.
  const [sentDeviceToken, setSentDeviceToken] = useState<string | undefined>(undefined);
  const [code, setCode] = useState('');
  const [busy, setBusy] = useState<Busy>(null);
  const [failure, setFailure] = useState<Failure | null>(null);
  const [notice, setNotice] = useState('');
  // The widget's token is good for one send: read and cleared by the send that carries it,
  // then the widget is mounted afresh (a new round) for the next one.
  const challengeTokenRef = useRef<string | null>(null);
  const [tokensHandedOver, setTokensHandedOver] = useState(0);
  const [challengeRound, setChallengeRound] = useState(0);
  const [challengeAsked, setChallengeAsked] = useState(false);
  // The send to make again once the widget hands over a token, after the API asked for one.
  const retryRef = useRef<{ resend: boolean; channel: Channel | undefined } | null>(null);
  const [resendAt, setResendAt] = useState(0);
  const [sendBlockedUntil, setSendBlockedUntil] = useState(0);
  const [now, refreshNow] = useNow(Math.max(resendAt, sendBlockedUntil));

  const ids = useIds();
  const dialogRef = useRef<HTMLDialogElement>(null);
  const firstFieldRef = useRef<HTMLInputElement>(null);
  const codeRef = useRef<HTMLInputElement>(null);
  const callsRef = useRef<AbortController>(new AbortController());

  // Opened as a modal (top layer, the rest of the page inert); on close, focus goes back.
  useEffect(() => {
    const dialog = dialogRef.current;
    // A fresh controller per mount: React's StrictMode mounts twice, and calls made after
    // the second mount must not be born aborted.
    const calls = new AbortController();
    callsRef.current = calls;
    const previous = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    if (dialog && !dialog.open) {
      if (typeof dialog.showModal === 'function') dialog.showModal();
      else dialog.setAttribute('open', '');
    }
    firstFieldRef.current?.focus();
    return () => {
      calls.abort();
      if (dialog?.open && typeof dialog.close === 'function') dialog.close();
      previous?.focus();
    };
  }, []);

  useEffect(() => {
    if (step === 'code') codeRef.current?.focus();
  }, [step, sent]);

  const sendSecondsLeft = secondsUntil(sendBlockedUntil, now);
  const resendSecondsLeft = secondsUntil(resendAt, now);

  const onChallengeToken = useCallback((token: string | null) => {
    challengeTokenRef.current = token;
    if (token) setTokensHandedOver((count) => count + 1);
  }, []);

  async function send(target: string, resend: boolean, channel?: Channel, again = false) {
    setBusy('sending');
    setFailure(null);
    setNotice('');
    const request: SendOtpRequest = { phone: target, locale: language };
    if (!resend) request.defaultCountry = country;
    // SMS is the contract's default: sent as none, as before channels.
    if (channel && channel !== 'sms') request.channel = channel;
    const captchaToken = challengeTokenRef.current;
    if (captchaToken) {
      request.captchaToken = captchaToken;
      // Spent by this send whatever its answer: the next one gets a fresh widget and token.
      challengeTokenRef.current = null;
      setChallengeRound((round) => round + 1);
    }
    // A resend goes to the `to` of the last answer; a first send to the number as typed.
    const number = resend ? target : e164Of(target, country);
    const deviceToken = number ? await readDeviceToken(deviceTokens, number) : undefined;
    if (deviceToken) request.deviceToken = deviceToken;
    try {
      const accepted = await client.sendOtp(request, { signal: callsRef.current.signal });
      retryRef.current = null;
      setChallengeAsked(false);
      setSent(accepted);
      setSentDeviceToken(deviceToken);
      setCode('');
      setStep('code');
      setResendAt(Date.now() + accepted.resendAfterSeconds * 1000);
      if (accepted.channel !== 'sms') setNotice(m.sentOn[accepted.channel](accepted.to));
      else setNotice(resend ? m.resent(accepted.to) : '');
    } catch (error) {
      // A service that offers no SMS: the first send goes on the first channel it offers.
      const offered = error instanceof ChannelNotAllowedError ? error.channels[0] : undefined;
      if (!channel && offered && offered !== 'sms') {
        setBusy(null);
        await send(target, resend, offered, again);
        return;
      }
      const found = failureOf(error, channel ?? 'sms', resend ? undefined : fieldOfSendError);
      const wait = found.detail.retryAfterSeconds;
      if (wait !== undefined && found.code === 'rate_limited') {
        if (resend) setResendAt(Date.now() + wait * 1000);
        else setSendBlockedUntil(Date.now() + wait * 1000);
      }
      if (found.code === 'captcha_failed' || found.code === 'captcha_required') {
        challengeTokenRef.current = null;
        setChallengeRound((round) => round + 1);
        setChallengeAsked(true);
        // Sent again once the widget hands over a token; only once per press of a button, so
        // that a widget that solves itself cannot loop against a challenge that keeps failing.
        if (!again) retryRef.current = { resend, channel };
      }
      setFailure(found);
    } finally {
      refreshNow();
      setBusy(null);
    }
  }

  // The send the API asked a challenge for, made again with the token the widget handed over.
  const sendAgainWithToken = useEffectEvent(() => {
    const retry = retryRef.current;
    if (!retry || !challengeTokenRef.current || busy !== null) return;
    retryRef.current = null;
    void send(retry.resend && sent ? sent.to : phone, retry.resend, retry.channel, true);
  });
  useEffect(() => {
    if (tokensHandedOver > 0) sendAgainWithToken();
  }, [tokensHandedOver]);

  async function verify(value: string) {
    if (!sent) return;
    setBusy('verifying');
    setFailure(null);
    setNotice('');
    const request: VerifyOtpRequest = { phone: sent.to, code: value };
    if (sentDeviceToken) request.deviceToken = sentDeviceToken;
    try {
      const approved = await client.verifyOtp(request, { signal: callsRef.current.signal });
      if (approved.deviceToken && approved.deviceTokenExpiresAt) {
        // Not awaited: the person is signed in whatever the store does.
        void keepDeviceToken(deviceTokens, approved.to, approved.deviceToken, approved.deviceTokenExpiresAt);
      }
      const trimmedName = name.trim();
      setStep('done');
      setNotice(m.signedIn(approved.to));
      onSignedIn({
        token: approved.token,
        subject: subjectOf(approved.token) ?? approved.to,
        to: approved.to,
        tokenExpiresAt: approved.tokenExpiresAt,
        ...(trimmedName ? { name: trimmedName } : {}),
      });
    } catch (error) {
      setFailure(failureOf(error, sent.channel, () => 'code'));
      codeRef.current?.select();
    } finally {
      setBusy(null);
    }
  }

  // WebOTP: the browser offers the code of an SMS that ends with `@<this host> #<code>`.
  const onWebOtpCode = useEffectEvent((received: string) => {
    if (busy !== null) return;
    setCode(received);
    void verify(received);
  });
  useEffect(() => {
    // WebOTP reads SMS only: a call or a WhatsApp message is typed in.
    if (step !== 'code' || sent?.channel !== 'sms' || !webOtp || typeof window === 'undefined' || !('OTPCredential' in window)) return;
    const controller = new AbortController();
    const options = { otp: { transport: ['sms'] }, signal: controller.signal } as CredentialRequestOptions;
    navigator.credentials
      .get(options)
      .then((credential) => {
        const received = (credential as { code?: unknown } | null)?.code;
        if (typeof received === 'string' && received) onWebOtpCode(received);
      })
      .catch(() => {
        // aborted, refused or unsupported: the person types the code
      });
    return () => controller.abort();
  }, [step, sent, webOtp]);

  function onKeyDown(event: KeyboardEvent<HTMLDialogElement>) {
    if (event.key === 'Escape') {
      event.preventDefault();
      onClose();
      return;
    }
    if (event.key !== 'Tab' || !dialogRef.current) return;
    // The focus trap: Tab and Shift+Tab cycle through the modal's own controls.
    const focusable = Array.from(dialogRef.current.querySelectorAll<HTMLElement>(FOCUSABLE));
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    if (!first || !last) return;
    const active = document.activeElement;
    if (event.shiftKey && (active === first || !dialogRef.current.contains(active))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (active === last || !dialogRef.current.contains(active))) {
      event.preventDefault();
      first.focus();
    }
  }

  const failureText = failure ? m.errors[failure.code](failure.detail) : '';
  const challengeWidget =
    challenge && (challengeWhen === 'always' || challengeAsked) ? (
      <div className="otp-challenge" role="group" aria-label={m.challengeLabel} key={challengeRound}>
        {challenge({ onToken: onChallengeToken, language })}
      </div>
    ) : null;
  const invalid = (field: Field) => failure?.field === field;
  const describedBy = (field: Field, hint: string) => (invalid(field) ? `${ids.error} ${hint}` : hint);

  const style = themeStyle(props.theme);
  return (
    <dialog
      ref={dialogRef}
      className={props.className ? `otp-signin ${props.className}` : 'otp-signin'}
      style={style}
      aria-labelledby={ids.title}
      aria-describedby={ids.intro}
      aria-modal="true"
      lang={language}
      onKeyDown={onKeyDown}
      onCancel={(event) => {
        event.preventDefault();
        onClose();
      }}
    >
      <style>{styles}</style>
      <div className="otp-header">
        <h2 id={ids.title}>{step === 'phone' ? m.title : m.codeTitle}</h2>
        <button type="button" className="otp-close" aria-label={m.close} onClick={onClose}>
          <span aria-hidden="true">×</span>
        </button>
      </div>

      {step === 'phone' && (
        <form
          noValidate
          aria-busy={busy === 'sending'}
          onSubmit={(event) => {
            event.preventDefault();
            if (busy === null && sendSecondsLeft === 0) void send(phone, false);
          }}
        >
          <p id={ids.intro} className="otp-muted">
            {m.intro}
          </p>
          {askName && (
            <div className="otp-field">
              <label htmlFor={ids.name}>
                {m.nameLabel} <span className="otp-muted">{m.optional}</span>
              </label>
              <input
                id={ids.name}
                ref={firstFieldRef}
                name="name"
                autoComplete="name"
                value={name}
                onChange={(event) => setName(event.target.value)}
              />
            </div>
          )}
          <div className="otp-row">
            <div className="otp-field">
              <label htmlFor={ids.country}>{m.countryLabel}</label>
              <select
                id={ids.country}
                name="country"
                autoComplete="tel-country-code"
                value={country}
                onChange={(event) => setCountry(event.target.value)}
              >
                {countries.map((option) => (
                  <option key={option.code} value={option.code}>
                    {`${option.name} (+${option.callingCode})`}
                  </option>
                ))}
              </select>
            </div>
            <div className="otp-field">
              <label htmlFor={ids.phone}>{m.phoneLabel}</label>
              <input
                id={ids.phone}
                ref={askName ? undefined : firstFieldRef}
                name="phone"
                type="tel"
                inputMode="tel"
                autoComplete="tel"
                value={phone}
                aria-invalid={invalid('phone')}
                aria-describedby={describedBy('phone', ids.phoneHint)}
                onChange={(event) => setPhone(event.target.value)}
              />
            </div>
          </div>
          <p id={ids.phoneHint} className="otp-muted">
            {m.phoneHint}
          </p>
          {challengeWidget}
          <div id={ids.error} role="alert" className="otp-error">
            {failureText}
          </div>
          <div className="otp-actions">
            <button type="submit" className="otp-primary" disabled={busy !== null || sendSecondsLeft > 0}>
              {busy === 'sending' ? m.sending : sendSecondsLeft > 0 ? m.sendIn(sendSecondsLeft) : m.send}
            </button>
          </div>
        </form>
      )}

      {step === 'code' && sent && (
        <form
          noValidate
          aria-busy={busy !== null}
          onSubmit={(event) => {
            event.preventDefault();
            if (busy === null) void verify(code);
          }}
        >
          <p id={ids.intro}>
            {m.codeSentTo[sent.channel](sent.to)}{' '}
            <button
              type="button"
              className="otp-link"
              onClick={() => {
                retryRef.current = null;
                setStep('phone');
                setFailure(null);
                setNotice('');
              }}
            >
              {m.changeNumber}
            </button>
          </p>
          <div className="otp-field">
            <label htmlFor={ids.code}>{m.codeLabel[sent.channel]}</label>
            <input
              id={ids.code}
              ref={codeRef}
              className="otp-code"
              name="code"
              autoComplete="one-time-code"
              inputMode="numeric"
              pattern="[0-9]*"
              maxLength={10}
              value={code}
              aria-invalid={invalid('code')}
              aria-describedby={describedBy('code', ids.codeHint)}
              onChange={(event) => setCode(event.target.value.replace(/\D/g, ''))}
            />
            <p id={ids.codeHint} className="otp-muted">
              {m.codeHint}
            </p>
          </div>
          {challengeWidget}
          <div id={ids.error} role="alert" className="otp-error">
            {failureText}
          </div>
          <div role="status" className="otp-status">
            {notice}
          </div>
          <div className="otp-actions">
            <button type="submit" className="otp-primary" disabled={busy !== null}>
              {busy === 'verifying' ? m.verifying : m.verify}
            </button>
            <button
              type="button"
              className="otp-secondary"
              disabled={busy !== null || resendSecondsLeft > 0}
              onClick={() => void send(sent.to, true, sent.channel)}
            >
              {busy === 'sending' ? m.sending : resendSecondsLeft > 0 ? m.resendIn(resendSecondsLeft) : m.resend}
            </button>
            {sent.channels
              .filter((other) => other !== sent.channel)
              .map((other) => (
                <button
                  key={other}
                  type="button"
                  className="otp-secondary"
                  data-channel={other}
                  disabled={busy !== null || resendSecondsLeft > 0}
                  onClick={() => void send(sent.to, true, other)}
                >
                  {m.switchTo[other]}
                </button>
              ))}
          </div>
        </form>
      )}

      {step === 'done' && (
        <div role="status" className="otp-status" id={ids.intro}>
          {notice}
        </div>
      )}
    </dialog>
  );
}

/** The current time, ticking while `deadline` is ahead, so countdowns redraw each second. */
function useNow(deadline: number): [number, () => void] {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (deadline <= now) return;
    const timer = setTimeout(() => setNow(Date.now()), Math.min(250, deadline - now));
    return () => clearTimeout(timer);
  }, [deadline, now]);
  return [now, () => setNow(Date.now())];
}

function secondsUntil(deadline: number, now: number): number {
  return deadline > now ? Math.ceil((deadline - now) / 1000) : 0;
}

function useIds() {
  const base = useId();
  return {
    title: `${base}-title`,
    intro: `${base}-intro`,
    name: `${base}-name`,
    country: `${base}-country`,
    phone: `${base}-phone`,
    phoneHint: `${base}-phone-hint`,
    code: `${base}-code`,
    codeHint: `${base}-code-hint`,
    error: `${base}-error`,
  };
}

function fieldOfSendError(code: FailureCode): Field | undefined {
  switch (code) {
    case 'invalid_phone':
    case 'country_not_allowed':
    case 'phone_unreachable':
      return 'phone';
    case 'captcha_required':
    case 'captcha_failed':
      return 'challenge';
    default:
      return undefined;
  }
}

/** The number as the service will read it (E.164), where it parses; else undefined. */
function e164Of(typed: string, country: string): string | undefined {
  try {
    return parsePhoneNumberFromString(typed, country as CountryCode)?.number;
  } catch {
    return undefined;
  }
}

function failureOf(error: unknown, channel: Channel, fieldOf?: (code: FailureCode) => Field | undefined): Failure {
  const code: FailureCode = isOtpError(error) ? error.code : 'unexpected_response';
  const detail: ErrorDetail = { channel };
  if (error instanceof IncorrectCodeError) detail.attemptsRemaining = error.attemptsRemaining;
  if (error instanceof RateLimitedError) detail.retryAfterSeconds = error.retryAfterSeconds;
  if (error instanceof ServiceUnavailableError && error.retryAfterSeconds !== undefined) {
    detail.retryAfterSeconds = error.retryAfterSeconds;
  }
  return { code, detail, field: fieldOf?.(code) };
}

function mergeMessages(base: Messages, overrides: MessageOverrides | undefined): Messages {
  if (!overrides) return base;
  const { errors, ...rest } = overrides;
  return { ...base, ...(rest as Partial<Messages>), errors: { ...base.errors, ...errors } };
}

function themeStyle(theme: OtpSignInTheme | undefined): CSSProperties | undefined {
  if (!theme) return undefined;
  const style: Record<string, string> = {};
  const names: Record<keyof OtpSignInTheme, string> = {
    accent: '--otp-accent',
    accentText: '--otp-accent-text',
    background: '--otp-background',
    foreground: '--otp-foreground',
    muted: '--otp-muted',
    border: '--otp-border',
    error: '--otp-error',
    success: '--otp-success',
    radius: '--otp-radius',
    font: '--otp-font',
  };
  for (const key of Object.keys(names) as (keyof OtpSignInTheme)[]) {
    const value = theme[key];
    if (value !== undefined) style[names[key]] = value;
  }
  return style;
}
