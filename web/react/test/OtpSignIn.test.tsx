// The modal in jsdom, against an OtpClient of the test's own that answers with the
// client package's real error classes (the real service is driven by the browser tests).
import {
  CaptchaRequiredError,
  ChannelNotAllowedError,
  IncorrectCodeError,
  InvalidPhoneError,
  NetworkError,
  RateLimitedError,
  channels,
  errorCodes,
  type CallOptions,
  type Channel,
  type OtpClient,
  type SendOtpAccepted,
  type SendOtpRequest,
  type VerifyOtpApproved,
  type VerifyOtpRequest,
} from '@otp-service/client';
import { act, cleanup, render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { StrictMode } from 'react';
import { describe, expect, it, vi } from 'vitest';

import { OtpSignIn, catalogs, countryOfLocale, duration, languageOf, type SignedIn } from '../src/index.js';

type Answer<T> = T | Error;

class ScriptedClient implements OtpClient {
  sends: SendOtpRequest[] = [];
  verifies: VerifyOtpRequest[] = [];
  sendAnswers: Answer<SendOtpAccepted>[] = [];
  verifyAnswers: Answer<VerifyOtpApproved>[] = [];

  sendOtp(request: SendOtpRequest, options?: CallOptions): Promise<SendOtpAccepted> {
    this.sends.push(request);
    return settle(options, this.sendAnswers.shift());
  }
  verifyOtp(request: VerifyOtpRequest, options?: CallOptions): Promise<VerifyOtpApproved> {
    this.verifies.push(request);
    return settle(options, this.verifyAnswers.shift());
  }
}

/** As the real client does, an aborted call fails with a NetworkError. */
function settle<T>(options: CallOptions | undefined, answer: Answer<T> | undefined): Promise<T> {
  if (options?.signal?.aborted) return Promise.reject(new NetworkError('aborted'));
  if (answer === undefined) return Promise.reject(new Error('no answer scripted'));
  return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
}

/** A widget that hands over a new token at each press, as a real one does at each solve. */
function numberedWidget() {
  let issued = 0;
  return ({ onToken }: { onToken: (token: string | null) => void }) => (
    <button type="button" onClick={() => onToken(`token-${(issued += 1)}`)}>
      I am human
    </button>
  );
}

const accepted = (
  to: string,
  resendAfterSeconds = 60,
  channel: Channel = 'sms',
  channels: Channel[] = ['sms'],
): SendOtpAccepted => ({
  status: 'pending',
  to,
  channel,
  expiresAt: '2026-11-24T15:10:00Z',
  resendAfterSeconds,
  channels,
});

function answer(status: number, code: string, extra: Record<string, unknown> = {}) {
  return { status, body: { error: { code, message: code, ...extra } } as never, retryAfterHeader: undefined };
}

function jwtWithSubject(sub: string): string {
  const encode = (value: object) => btoa(JSON.stringify(value)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
  return `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode({ sub, iss: 'otp-service' })}.signature`;
}

/** Waits for the alert region (always present, empty until an error) to say `text`. */
async function expectAlert(text: string) {
  await waitFor(() => {
    expect(screen.getByRole('alert').textContent).toBe(text);
  });
}

/** Lets fake time pass in steps, so that each tick's render schedules the next tick. */
async function elapse(ms: number) {
  for (let passed = 0; passed < ms; passed += 250) {
    await act(async () => {
      await vi.advanceTimersByTimeAsync(250);
    });
  }
}

function open(client: OtpClient, props: Partial<Parameters<typeof OtpSignIn>[0]> = {}) {
  const onClose = vi.fn();
  const onSignedIn = vi.fn<(result: SignedIn) => void>();
  render(<OtpSignIn client={client} open onClose={onClose} onSignedIn={onSignedIn} locale="en-US" {...props} />);
  return { onClose, onSignedIn };
}

describe('<OtpSignIn> channels', () => {
  it('offers the other channels on the code step and resends on the one picked', async () => {
    const user = userEvent.setup({ delay: null });
    const client = new ScriptedClient();
    client.sendAnswers.push(accepted('+5511987654321', 0, 'sms', ['sms', 'whatsapp', 'voice']));
    client.sendAnswers.push(accepted('+5511987654321', 0, 'voice', ['sms', 'whatsapp', 'voice']));
    open(client, { locale: 'pt-BR' });
    await user.type(screen.getByLabelText('Número de telefone'), '11 98765 4321');
    await user.click(screen.getByRole('button', { name: 'Enviar código' }));
    await screen.findByRole('button', { name: 'Receber uma ligação' });
    expect(screen.getByRole('button', { name: 'Enviar pelo WhatsApp' })).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Enviar por SMS' })).toBeNull();
    await user.click(screen.getByRole('button', { name: 'Receber uma ligação' }));
    expect(client.sends[1]).toEqual({ phone: '+5511987654321', locale: 'pt', channel: 'voice' });
    await waitFor(() => {
      expect(screen.getByRole('status').textContent).toBe('Estamos ligando para +5511987654321: atenda e ouça o código.');
    });
    // Now the call was the last channel: SMS is offered instead, the call is resent by "Reenviar".
    expect(screen.getByRole('button', { name: 'Enviar por SMS' })).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Receber uma ligação' })).toBeNull();
    await user.click(screen.getByRole('button', { name: 'Reenviar código' }));
    expect(client.sends[2]).toEqual({ phone: '+5511987654321', locale: 'pt', channel: 'voice' });
  });

  it('offers no other channel where the service offers only SMS', async () => {
    const user = userEvent.setup({ delay: null });
    const client = new ScriptedClient();
    client.sendAnswers.push(accepted('+14155550123', 0));
    open(client);
    await user.type(screen.getByLabelText('Phone number'), '4155550123');
    await user.click(screen.getByRole('button', { name: 'Send code' }));
    await screen.findByRole('button', { name: 'Resend code' });
    expect(screen.queryByRole('button', { name: 'Call me instead' })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Send by WhatsApp' })).toBeNull();
  });

  it('sends on the first channel offered where the service offers no SMS', async () => {
    const user = userEvent.setup({ delay: null });
    const client = new ScriptedClient();
    const refused = new ChannelNotAllowedError(answer(400, 'channel_not_allowed', { channels: ['voice'] }));
    client.sendAnswers.push(refused, accepted('+14155550123', 60, 'voice', ['voice']));
    open(client);
    await user.type(screen.getByLabelText('Phone number'), '4155550123');
    await user.click(screen.getByRole('button', { name: 'Send code' }));
    await waitFor(() => {
      expect(screen.getByRole('status').textContent).toBe('We are calling +14155550123: answer, and listen for the code.');
    });
    expect(client.sends.map((request) => request.channel)).toEqual([undefined, 'voice']);
  });

  it('names every channel in every language, apart from the resend button', () => {
    for (const [language, messages] of Object.entries(catalogs)) {
      const names = Object.values(messages.switchTo);
      expect(new Set(names).size, language).toBe(3);
      expect(names, language).not.toContain(messages.resend);
      expect(messages.sentOn.voice('+1').includes('+1'), language).toBe(true);
      expect(messages.errors.channel_not_allowed({}).length, language).toBeGreaterThan(10);
    }
  });
});

describe('<OtpSignIn>', () => {
  it('renders nothing while closed', () => {
    const { container } = render(
      <OtpSignIn client={new ScriptedClient()} open={false} onClose={() => undefined} onSignedIn={() => undefined} />,
    );
    expect(container.innerHTML).toBe('');
  });

  it('opens as a labelled dialog with the phone field focused', () => {
    open(new ScriptedClient());
    const dialog = screen.getByRole('dialog', { name: 'Sign in with your phone' });
    expect(dialog.getAttribute('aria-modal')).toBe('true');
    expect(document.activeElement).toBe(screen.getByLabelText('Phone number'));
  });

  it('sends the number with the picked country and the language, then shows back the normalised number', async () => {
    const user = userEvent.setup({ delay: null });
    const client = new ScriptedClient();
    client.sendAnswers.push(accepted('+447911123456'));
    open(client, { locale: 'en-GB' });
    expect(screen.getByLabelText<HTMLSelectElement>('Country').value).toBe('GB');
    await user.type(screen.getByLabelText('Phone number'), '07911 123456');
    await user.click(screen.getByRole('button', { name: 'Send code' }));
    expect(client.sends).toEqual([{ phone: '07911 123456', defaultCountry: 'GB', locale: 'en' }]);
    expect(await screen.findByText(/We sent a code to \+447911123456\./)).toBeTruthy();
    const code = screen.getByLabelText('Code from the SMS');
    expect(code.getAttribute('autocomplete')).toBe('one-time-code');
    expect(code.getAttribute('inputmode')).toBe('numeric');
    expect(document.activeElement).toBe(code);
  });

  it('says how many attempts are left after a wrong code, then signs in with the right one', async () => {
    const user = userEvent.setup({ delay: null });
    const client = new ScriptedClient();
    client.sendAnswers.push(accepted('+14155550123'));
    client.verifyAnswers.push(new IncorrectCodeError(answer(401, 'incorrect_code', { attemptsRemaining: 4 })));
    const token = jwtWithSubject('+14155550123');
    client.verifyAnswers.push({ status: 'approved', to: '+14155550123', token, tokenExpiresAt: '2026-11-24T16:00:00Z' });
    const { onSignedIn } = open(client, { askName: true });
    await user.type(screen.getByLabelText(/Your name/), 'Ada');
    await user.type(screen.getByLabelText('Phone number'), '+1 415 555 0123');
    await user.keyboard('{Enter}');
    const code = await screen.findByLabelText('Code from the SMS');
    await user.type(code, '000000{Enter}');
    await expectAlert('That code is not right. 4 attempts left.');
    expect(code.getAttribute('aria-invalid')).toBe('true');
    await user.clear(code);
    await user.type(code, '12a3-456{Enter}');
    expect(client.verifies.at(-1)).toEqual({ phone: '+14155550123', code: '123456' });
    expect(onSignedIn).toHaveBeenCalledWith({
      token,
      subject: '+14155550123',
      to: '+14155550123',
      tokenExpiresAt: '2026-11-24T16:00:00Z',
      name: 'Ada',
    });
  });

  it('works under StrictMode, whose double mount must not abort the calls', async () => {
    const user = userEvent.setup({ delay: null });
    const client = new ScriptedClient();
    client.sendAnswers.push(accepted('+14155550123'));
    render(
      <StrictMode>
        <OtpSignIn client={client} open onClose={() => undefined} onSignedIn={() => undefined} locale="en" />
      </StrictMode>,
    );
    await user.type(screen.getByLabelText('Phone number'), '+14155550123{Enter}');
    expect(await screen.findByText(/We sent a code to \+14155550123\./)).toBeTruthy();
  });

  it('shows the invalid-number message on the phone field', async () => {
    const user = userEvent.setup({ delay: null });
    const client = new ScriptedClient();
    client.sendAnswers.push(new InvalidPhoneError(answer(400, 'invalid_phone')));
    open(client);
    await user.type(screen.getByLabelText('Phone number'), '12{Enter}');
    await expectAlert(catalogs.en.errors.invalid_phone({}));
    expect(screen.getByLabelText('Phone number').getAttribute('aria-invalid')).toBe('true');
  });

  it('blocks sending while rate limited and counts down', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const user = userEvent.setup({ delay: null, advanceTimers: (ms) => vi.advanceTimersByTime(ms) });
      const client = new ScriptedClient();
      client.sendAnswers.push(new RateLimitedError(answer(429, 'rate_limited', { retryAfterSeconds: 5 })));
      open(client);
      await user.type(screen.getByLabelText('Phone number'), '+14155550123{Enter}');
      await expectAlert(catalogs.en.errors.rate_limited({ retryAfterSeconds: 5 }));
      expect(screen.getByRole('alert').textContent).toMatch(/^Too many requests\. Try again in 5 s\. /);
      const button = screen.getByRole<HTMLButtonElement>('button', { name: /Send code \(wait [45] s\)/ });
      expect(button.disabled).toBe(true);
      await elapse(2_000);
      expect(screen.getByRole('button', { name: /Send code \(wait [23] s\)/ })).toBeTruthy();
      await elapse(3_500);
      expect(screen.getByRole<HTMLButtonElement>('button', { name: 'Send code' }).disabled).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });

  it('counts down to the resend and resends to the normalised number', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const user = userEvent.setup({ delay: null, advanceTimers: (ms) => vi.advanceTimersByTime(ms) });
      const client = new ScriptedClient();
      client.sendAnswers.push(accepted('+14155550123', 3), accepted('+14155550123', 3));
      open(client);
      await user.type(screen.getByLabelText('Phone number'), '(415) 555-0123{Enter}');
      const resend = await screen.findByRole<HTMLButtonElement>('button', { name: /Resend code in [23] s/ });
      expect(resend.disabled).toBe(true);
      await elapse(3_250);
      await user.click(screen.getByRole('button', { name: 'Resend code' }));
      expect(client.sends[1]).toEqual({ phone: '+14155550123', locale: 'en' });
      expect((await screen.findByRole('status')).textContent).toBe('A new code was sent to +14155550123.');
    } finally {
      vi.useRealTimers();
    }
  });

  it('passes the bot challenge token, and asks for it when the API requires one', async () => {
    const user = userEvent.setup({ delay: null });
    const client = new ScriptedClient();
    client.sendAnswers.push(new CaptchaRequiredError(answer(400, 'captcha_required')), accepted('+14155550123'));
    open(client, {
      challenge: ({ onToken }) => (
        <button type="button" onClick={() => onToken('token-from-widget')}>
          I am human
        </button>
      ),
    });
    await user.type(screen.getByLabelText('Phone number'), '+14155550123{Enter}');
    await expectAlert(catalogs.en.errors.captcha_required({}));
    expect(client.sends[0]?.captchaToken).toBeUndefined();
    // Solving the check sends again by itself: the person does not press Send twice.
    await user.click(screen.getByRole('button', { name: 'I am human' }));
    await screen.findByLabelText('Code from the SMS');
    expect(client.sends).toHaveLength(2);
    expect(client.sends[1]?.captchaToken).toBe('token-from-widget');
  });

  it('closes on Escape and keeps Tab inside the dialog', async () => {
    const user = userEvent.setup({ delay: null });
    const { onClose } = open(new ScriptedClient());
    const dialog = screen.getByRole('dialog');
    for (let i = 0; i < 8; i += 1) {
      await user.tab();
      expect(dialog.contains(document.activeElement)).toBe(true);
    }
    await user.tab({ shift: true });
    expect(dialog.contains(document.activeElement)).toBe(true);
    await user.keyboard('{Escape}');
    expect(onClose).toHaveBeenCalledTimes(1);
  });

  it('speaks the browser language and applies the theme', () => {
    open(new ScriptedClient(), { locale: 'pt-BR', theme: { accent: 'rebeccapurple' } });
    const dialog = screen.getByRole('dialog', { name: 'Entre com o seu telefone' });
    expect(dialog.getAttribute('lang')).toBe('pt');
    expect(dialog.style.getPropertyValue('--otp-accent')).toBe('rebeccapurple');
    expect(screen.getByLabelText<HTMLSelectElement>('País').value).toBe('BR');
  });
});

describe('texts', () => {
  it('every language has a message for every contract error code', () => {
    for (const [language, messages] of Object.entries(catalogs)) {
      for (const code of [...errorCodes, 'network_error', 'unexpected_response'] as const) {
        for (const channel of [undefined, ...channels]) {
          const text = messages.errors[code]({ attemptsRemaining: 2, retryAfterSeconds: 30, channel });
          // A whole sentence, with every placeholder filled.
          expect(text, `${language} ${code} ${channel}`).toMatch(/^\S.*\S[.!?…]$/u);
          expect(text, `${language} ${code} ${channel}`).not.toMatch(/undefined|NaN|\[object|\$\{/);
          // A text about a call or a WhatsApp message never speaks of an SMS.
          if (channel && channel !== 'sms') expect(text, `${language} ${code} ${channel}`).not.toMatch(/SMS/);
        }
      }
      for (const channel of channels) {
        for (const text of [messages.codeSentTo[channel]('+1 555 0100'), messages.codeLabel[channel]]) {
          expect(text, `${language} ${channel}`).toMatch(/^\S.*\S$/u);
          if (channel !== 'sms') expect(text, `${language} ${channel}`).not.toMatch(/SMS/);
        }
        expect(messages.codeSentTo[channel]('+1 555 0100'), `${language} ${channel}`).toContain('+1 555 0100');
      }
      expect(messages.errors.incorrect_code({ attemptsRemaining: 2 })).toContain('2');
      expect(messages.errors.rate_limited({ retryAfterSeconds: 30 })).toContain('30');
    }
  });

  it('the languages differ from English in every text', () => {
    // Every leaf of the catalog, by its path: strings as they are, functions with a sample
    // (the errors once for each channel, and once with none).
    const texts = (value: unknown, path: string, out: Map<string, string>): Map<string, string> => {
      const call = (arg: unknown) => String((value as (arg: unknown) => unknown)(arg));
      if (typeof value === 'string') out.set(path, value);
      else if (typeof value === 'function' && path.startsWith('errors.'))
        for (const channel of [undefined, ...channels])
          out.set(`${path}[${channel ?? 'none'}]`, call({ attemptsRemaining: 2, retryAfterSeconds: 30, channel }));
      else if (typeof value === 'function') out.set(path, call('+1 555 0100'));
      else if (value !== null && typeof value === 'object')
        for (const [key, inner] of Object.entries(value)) texts(inner, path ? `${path}.${key}` : key, out);
      return out;
    };
    const english = texts(catalogs.en, '', new Map());
    expect(english.size).toBeGreaterThan(100);
    for (const language of ['es', 'pt', 'fr'] as const) {
      const translated = texts(catalogs[language], '', new Map());
      expect([...translated.keys()], language).toEqual([...english.keys()]);
      for (const [path, text] of translated) {
        expect(text, `${language} ${path}`).not.toBe(english.get(path));
      }
    }
  });

  it('the phone step names no channel in any language: the channels offered are known only after the first send', () => {
    for (const language of ['en', 'es', 'pt', 'fr'] as const) {
      expect(catalogs[language].intro, language).not.toMatch(/SMS|text|WhatsApp|call|llamad|chamad|appel/i);
    }
  });

  it('picks the language and the country from a locale', () => {
    expect(languageOf('es-MX')).toBe('es');
    expect(languageOf('de-DE')).toBe('en');
    expect(languageOf(undefined)).toBe('en');
    expect(countryOfLocale('fr')).toBe('FR');
    expect(countryOfLocale('en-GB')).toBe('GB');
    expect(countryOfLocale('not a locale')).toBeUndefined();
  });
});

describe('<OtpSignIn> texts follow the channel', () => {
  it.each(['en', 'es', 'pt', 'fr'] as const)('%s: after a call, the code step and its errors speak of the call, never of an SMS', async (language) => {
    const user = userEvent.setup({ delay: null });
    const m = catalogs[language];
    const client = new ScriptedClient();
    const { PhoneUnreachableError, InvalidCodeFormatError, SmsFailedError } = await import('@otp-service/client');
    client.sendAnswers.push(
      accepted('+14155550123', 0, 'voice', ['voice', 'whatsapp']),
      new PhoneUnreachableError(answer(422, 'phone_unreachable')),
      new SmsFailedError(answer(502, 'sms_failed')),
    );
    client.verifyAnswers.push(new InvalidCodeFormatError(answer(400, 'invalid_code_format')));
    open(client, { locale: language });
    await user.type(screen.getByLabelText(m.phoneLabel), '+14155550123{Enter}');
    const code = await screen.findByLabelText(m.codeLabel.voice);
    expect(screen.getByText(m.codeSentTo.voice('+14155550123'), { exact: false })).toBeTruthy();
    // The first line, the code field, the alert and the status (the other channel's button may say SMS).
    const shown = () =>
      ['form > p', '.otp-field', '[role=alert]', '[role=status]']
        .map((selector) => screen.getByRole('dialog').querySelector(selector)?.textContent ?? '')
        .join(' | ');
    expect(shown()).not.toMatch(/SMS/);
    await user.type(code, '123{Enter}');
    await expectAlert(m.errors.invalid_code_format({ channel: 'voice' }));
    expect(shown()).not.toMatch(/SMS/);
    // The resend goes by call again: the provider's refusals name the call too.
    await user.click(screen.getByRole('button', { name: m.resend }));
    await expectAlert(m.errors.phone_unreachable({ channel: 'voice' }));
    expect(shown()).not.toMatch(/SMS/);
    await user.click(screen.getByRole('button', { name: m.resend }));
    await expectAlert(m.errors.sms_failed({ channel: 'voice' }));
    expect(shown()).not.toMatch(/SMS/);
  });

  it('a WhatsApp send names WhatsApp in the label and the first line', async () => {
    const user = userEvent.setup({ delay: null });
    const client = new ScriptedClient();
    client.sendAnswers.push(accepted('+5511987654321', 0, 'whatsapp', ['whatsapp', 'sms']));
    open(client, { locale: 'pt-BR' });
    await user.type(screen.getByLabelText('Número de telefone'), '+5511987654321{Enter}');
    expect(await screen.findByLabelText('Código do WhatsApp')).toBeTruthy();
    expect(screen.getByText('O código está a caminho de +5511987654321 pelo WhatsApp.', { exact: false })).toBeTruthy();
  });
});

describe('<OtpSignIn> device tokens', () => {
  const device = { deviceToken: 'dt.from-approval', deviceTokenExpiresAt: '2999-01-01T00:00:00Z' };
  const approval = (to: string) => ({
    status: 'approved' as const,
    to,
    token: jwtWithSubject(to),
    tokenExpiresAt: '2026-11-24T16:00:00Z',
  });

  it('keeps the approval token in localStorage by default, per number, and sends it with the next send and verify', async () => {
    const user = userEvent.setup({ delay: null });
    const client = new ScriptedClient();
    client.sendAnswers.push(accepted('+14155550123'), accepted('+14155550123'));
    client.verifyAnswers.push({ ...approval('+14155550123'), ...device }, approval('+14155550123'));
    const { onSignedIn } = open(client);
    await user.type(screen.getByLabelText('Phone number'), '(415) 555-0123{Enter}');
    await user.type(await screen.findByLabelText('Code from the SMS'), '123456{Enter}');
    await waitFor(() => {
      expect(onSignedIn).toHaveBeenCalledTimes(1);
    });
    expect(client.sends[0]?.deviceToken).toBeUndefined();
    expect(client.verifies[0]?.deviceToken).toBeUndefined();
    expect(JSON.parse(localStorage.getItem('otp-service.device-token:+14155550123') ?? '{}')).toEqual({
      token: 'dt.from-approval',
      expiresAt: '2999-01-01T00:00:00Z',
    });

    // A new opening, the number typed in another form: the token goes with both calls.
    cleanup();
    open(client);
    await user.type(screen.getByLabelText('Phone number'), '+1 415-555-0123{Enter}');
    await user.type(await screen.findByLabelText('Code from the SMS'), '654321{Enter}');
    await waitFor(() => {
      expect(client.verifies).toHaveLength(2);
    });
    expect(client.sends[1]).toMatchObject({ phone: '+1 415-555-0123', deviceToken: 'dt.from-approval' });
    expect(client.verifies[1]).toEqual({ phone: '+14155550123', code: '654321', deviceToken: 'dt.from-approval' });
    // Another number has none.
    expect(localStorage.getItem('otp-service.device-token:+14155550124')).toBeNull();
  });

  it('uses the app store (async), and sends with a resend the token its send carried', async () => {
    const user = userEvent.setup({ delay: null });
    const kept = new Map<string, string>([['+447911123456', 'dt.app-kept']]);
    const deviceTokenStore = {
      get: vi.fn(async (number: string) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return kept.get(number);
      }),
      set: vi.fn(async (number: string, token: string) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        kept.set(number, token);
      }),
    };
    const client = new ScriptedClient();
    client.sendAnswers.push(accepted('+447911123456', 0), accepted('+447911123456', 0));
    client.verifyAnswers.push({ ...approval('+447911123456'), ...device });
    const { onSignedIn } = open(client, { locale: 'en-GB', deviceTokenStore });
    await user.type(screen.getByLabelText('Phone number'), '07911 123456{Enter}');
    await screen.findByLabelText('Code from the SMS');
    await user.click(screen.getByRole('button', { name: 'Resend code' }));
    await waitFor(() => {
      expect(client.sends).toHaveLength(2);
    });
    await user.type(screen.getByLabelText('Code from the SMS'), '123456{Enter}');
    await waitFor(() => {
      expect(deviceTokenStore.set).toHaveBeenCalledWith('+447911123456', 'dt.from-approval', '2999-01-01T00:00:00Z');
    });
    expect(deviceTokenStore.get).toHaveBeenCalledWith('+447911123456');
    expect(client.sends.map((request) => request.deviceToken)).toEqual(['dt.app-kept', 'dt.app-kept']);
    expect(client.verifies[0]?.deviceToken).toBe('dt.app-kept');
    expect(onSignedIn).toHaveBeenCalledTimes(1);
    expect(localStorage.length).toBe(0);
  });

  it('signs in where the store fails at every call, and keeps nothing with deviceTokenStore null', async () => {
    const user = userEvent.setup({ delay: null });
    const broken = {
      get: () => {
        throw new Error('storage disabled');
      },
      set: () => Promise.reject(new Error('quota')),
    };
    for (const deviceTokenStore of [broken, null]) {
      const client = new ScriptedClient();
      client.sendAnswers.push(accepted('+14155550123'));
      client.verifyAnswers.push({ ...approval('+14155550123'), ...device });
      const { onSignedIn } = open(client, { deviceTokenStore });
      await user.type(screen.getByLabelText('Phone number'), '+14155550123{Enter}');
      await user.type(await screen.findByLabelText('Code from the SMS'), '123456{Enter}');
      await waitFor(() => {
        expect(onSignedIn).toHaveBeenCalledTimes(1);
      });
      expect(client.sends[0]?.deviceToken).toBeUndefined();
      expect(localStorage.length).toBe(0);
      cleanup();
    }
  });

  it('signs in where localStorage itself throws', async () => {
    const user = userEvent.setup({ delay: null });
    const spies = [
      vi.spyOn(Storage.prototype, 'getItem').mockImplementation(() => {
        throw new DOMException('The operation is insecure.', 'SecurityError');
      }),
      vi.spyOn(Storage.prototype, 'setItem').mockImplementation(() => {
        throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      }),
    ];
    try {
      const client = new ScriptedClient();
      client.sendAnswers.push(accepted('+14155550123'));
      client.verifyAnswers.push({ ...approval('+14155550123'), ...device });
      const { onSignedIn } = open(client);
      await user.type(screen.getByLabelText('Phone number'), '+14155550123{Enter}');
      await user.type(await screen.findByLabelText('Code from the SMS'), '123456{Enter}');
      await waitFor(() => {
        expect(onSignedIn).toHaveBeenCalledTimes(1);
      });
      expect(spies[1]).toHaveBeenCalled();
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });
});

describe('<OtpSignIn> bot challenge', () => {
  it('always: the resend step has its own widget, and each send carries a fresh token, never a spent one', async () => {
    const user = userEvent.setup({ delay: null });
    const client = new ScriptedClient();
    client.sendAnswers.push(accepted('+14155550123', 0), accepted('+14155550123', 0), accepted('+14155550123', 0));
    open(client, { challenge: numberedWidget() });
    await user.type(screen.getByLabelText('Phone number'), '+14155550123');
    await user.click(screen.getByRole('button', { name: 'I am human' }));
    await user.click(screen.getByRole('button', { name: 'Send code' }));
    await screen.findByLabelText('Code from the SMS');
    expect(screen.getByRole('group', { name: 'Security check' })).toBeTruthy();
    await user.click(screen.getByRole('button', { name: 'I am human' }));
    await user.click(screen.getByRole('button', { name: 'Resend code' }));
    await waitFor(() => {
      expect(client.sends).toHaveLength(2);
    });
    await user.click(screen.getByRole('button', { name: 'I am human' }));
    await user.click(screen.getByRole('button', { name: 'Resend code' }));
    await waitFor(() => {
      expect(client.sends).toHaveLength(3);
    });
    expect(client.sends.map((request) => request.captchaToken)).toEqual(['token-1', 'token-2', 'token-3']);
  });

  it('always: a resend without a solved check is asked for one, and goes once the widget hands it over', async () => {
    const user = userEvent.setup({ delay: null });
    const client = new ScriptedClient();
    client.sendAnswers.push(
      accepted('+14155550123', 0),
      new CaptchaRequiredError(answer(400, 'captcha_required')),
      accepted('+14155550123', 0, 'voice', ['sms', 'voice']),
    );
    open(client, { challenge: numberedWidget() });
    await user.type(screen.getByLabelText('Phone number'), '+14155550123');
    await user.click(screen.getByRole('button', { name: 'I am human' }));
    await user.click(screen.getByRole('button', { name: 'Send code' }));
    await screen.findByLabelText('Code from the SMS');
    // The token of the first send is spent: the resend goes without one, and is asked for one.
    await user.click(screen.getByRole('button', { name: 'Resend code' }));
    await expectAlert(catalogs.en.errors.captcha_required({}));
    expect(client.sends[1]?.captchaToken).toBeUndefined();
    await user.click(screen.getByRole('button', { name: 'I am human' }));
    await waitFor(() => {
      expect(client.sends).toHaveLength(3);
    });
    expect(client.sends[2]).toMatchObject({ phone: '+14155550123', captchaToken: 'token-2' });
  });

  it('under_attack: no widget until the API asks, then it appears (on either step) and the send goes again with its token', async () => {
    const user = userEvent.setup({ delay: null });
    const client = new ScriptedClient();
    client.sendAnswers.push(
      new CaptchaRequiredError(answer(400, 'captcha_required')),
      accepted('+14155550123', 0, 'sms', ['sms', 'voice']),
      accepted('+14155550123', 0, 'sms', ['sms', 'voice']),
      new CaptchaRequiredError(answer(400, 'captcha_required')),
      accepted('+14155550123', 0, 'voice', ['sms', 'voice']),
    );
    open(client, { challenge: numberedWidget(), challengeWhen: 'under_attack' });
    expect(screen.queryByRole('group', { name: 'Security check' })).toBeNull();
    await user.type(screen.getByLabelText('Phone number'), '(415) 555-0123{Enter}');
    await expectAlert(catalogs.en.errors.captcha_required({}));
    expect(screen.getByRole('group', { name: 'Security check' })).toBeTruthy();
    await user.click(screen.getByRole('button', { name: 'I am human' }));
    await screen.findByLabelText('Code from the SMS');
    expect(client.sends[1]).toEqual({ phone: '(415) 555-0123', defaultCountry: 'US', locale: 'en', captchaToken: 'token-1' });
    // Past the challenge, the widget is gone: a resend the API lets through needs none.
    expect(screen.queryByRole('group', { name: 'Security check' })).toBeNull();
    await user.click(screen.getByRole('button', { name: 'Resend code' }));
    await waitFor(() => {
      expect(client.sends).toHaveLength(3);
    });
    expect(client.sends[2]?.captchaToken).toBeUndefined();
    // The next one is asked for a challenge: the widget comes on the code step.
    await user.click(screen.getByRole('button', { name: 'Call me instead' }));
    await expectAlert(catalogs.en.errors.captcha_required({}));
    await user.click(screen.getByRole('button', { name: 'I am human' }));
    await waitFor(() => {
      expect(client.sends).toHaveLength(5);
    });
    expect(client.sends[4]).toEqual({ phone: '+14155550123', locale: 'en', channel: 'voice', captchaToken: 'token-2' });
    await waitFor(() => {
      expect(screen.getByRole('status').textContent).toBe(catalogs.en.sentOn.voice('+14155550123'));
    });
  });

  it('sends again by itself only once per press: a challenge that keeps failing waits for the person', async () => {
    const user = userEvent.setup({ delay: null });
    const { CaptchaFailedError } = await import('@otp-service/client');
    const client = new ScriptedClient();
    client.sendAnswers.push(
      new CaptchaRequiredError(answer(400, 'captcha_required')),
      new CaptchaFailedError(answer(403, 'captcha_failed')),
    );
    open(client, { challenge: numberedWidget(), challengeWhen: 'under_attack' });
    await user.type(screen.getByLabelText('Phone number'), '+14155550123{Enter}');
    await user.click(await screen.findByRole('button', { name: 'I am human' }));
    await expectAlert(catalogs.en.errors.captcha_failed({}));
    await user.click(screen.getByRole('button', { name: 'I am human' }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(client.sends).toHaveLength(2);
  });
});

describe('lock texts', () => {
  it('every language says that a new device of a locked number stays locked, with the wait in a readable unit', () => {
    const device = { en: /new device/, es: /dispositivo nuevo/, pt: /dispositivo novo/, fr: /nouvel appareil/ } as const;
    for (const [language, messages] of Object.entries(catalogs) as [keyof typeof device, (typeof catalogs)['en']][]) {
      for (const text of [
        messages.errors.rate_limited({ retryAfterSeconds: 86_400 }),
        messages.errors.rate_limited({}),
        messages.errors.too_many_attempts({}),
      ]) {
        expect(text, language).toMatch(device[language]);
      }
      expect(messages.errors.rate_limited({ retryAfterSeconds: 86_400 }), language).toContain('24 h');
    }
    expect([30, 119, 120, 900, 7199, 7200, 86_400].map(duration)).toEqual(['30 s', '119 s', '2 min', '15 min', '120 min', '2 h', '24 h']);
  });
});
