// The modal in jsdom, against an OtpClient of the test's own that answers with the
// client package's real error classes (the real service is driven by the browser tests).
import {
  CaptchaRequiredError,
  ChannelNotAllowedError,
  IncorrectCodeError,
  InvalidPhoneError,
  NetworkError,
  RateLimitedError,
  errorCodes,
  type CallOptions,
  type Channel,
  type OtpClient,
  type SendOtpAccepted,
  type SendOtpRequest,
  type VerifyOtpApproved,
  type VerifyOtpRequest,
} from '@otp-service/client';
import { act, render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { StrictMode } from 'react';
import { describe, expect, it, vi } from 'vitest';

import { OtpSignIn, catalogs, countryOfLocale, languageOf, type SignedIn } from '../src/index.js';

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
      await expectAlert('Too many requests. Try again in 5 s.');
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
    await user.click(screen.getByRole('button', { name: 'I am human' }));
    await user.click(screen.getByRole('button', { name: 'Send code' }));
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
        const text = messages.errors[code]({ attemptsRemaining: 2, retryAfterSeconds: 30 });
        // A whole sentence, with every placeholder filled.
        expect(text, `${language} ${code}`).toMatch(/^\S.*\S[.!?…]$/u);
        expect(text, `${language} ${code}`).not.toMatch(/undefined|NaN|\[object|\$\{/);
      }
      expect(messages.errors.incorrect_code({ attemptsRemaining: 2 })).toContain('2');
      expect(messages.errors.rate_limited({ retryAfterSeconds: 30 })).toContain('30');
    }
  });

  it('the languages differ from English in every text', () => {
    // Every leaf of the catalog, by its path: strings as they are, functions with a sample.
    const texts = (value: unknown, path: string, out: Map<string, string>): Map<string, string> => {
      if (typeof value === 'string') out.set(path, value);
      else if (typeof value === 'function')
        out.set(path, String((value as (arg: unknown) => unknown)(path.startsWith('errors.') ? { attemptsRemaining: 2, retryAfterSeconds: 30 } : '+1 555 0100')));
      else if (value !== null && typeof value === 'object')
        for (const [key, inner] of Object.entries(value)) texts(inner, path ? `${path}.${key}` : key, out);
      return out;
    };
    const english = texts(catalogs.en, '', new Map());
    expect(english.size).toBeGreaterThan(40);
    for (const language of ['es', 'pt', 'fr'] as const) {
      const translated = texts(catalogs[language], '', new Map());
      expect([...translated.keys()], language).toEqual([...english.keys()]);
      for (const [path, text] of translated) {
        expect(text, `${language} ${path}`).not.toBe(english.get(path));
      }
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
