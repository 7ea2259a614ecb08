// The modal's texts in en, es, pt and fr, with a message for every error code of the contract.
// Every text about the code names the channel it came by (SMS, call, WhatsApp).
import type { Channel, ErrorCode } from '@otp-service/client';

/** What an error message may mention. */
export interface ErrorDetail {
  attemptsRemaining?: number | undefined;
  retryAfterSeconds?: number | undefined;
  /** The channel of the send (or, for a verify, of the code): SMS where none is given. */
  channel?: Channel | undefined;
}

/** One text for each channel. */
export type PerChannel<T> = { readonly [C in Channel]: T };

/** Every failure the modal can meet: the contract's codes, and the two without an API answer. */
export type FailureCode = ErrorCode | 'network_error' | 'unexpected_response';

export interface Messages {
  title: string;
  intro: string;
  close: string;
  nameLabel: string;
  optional: string;
  countryLabel: string;
  phoneLabel: string;
  phoneHint: string;
  challengeLabel: string;
  send: string;
  sending: string;
  sendIn: (seconds: number) => string;
  codeTitle: string;
  /** The code step's first line, by the channel of the send. */
  codeSentTo: PerChannel<(to: string) => string>;
  /** The code field's label, by the channel of the send. */
  codeLabel: PerChannel<string>;
  codeHint: string;
  verify: string;
  verifying: string;
  resend: string;
  resendIn: (seconds: number) => string;
  resent: (to: string) => string;
  /** The buttons that resend on another channel the service offers ("Call me instead"). */
  switchTo: { readonly [C in Channel]: string };
  /** What a send on a channel other than SMS did, said after it. */
  sentOn: { readonly [C in Exclude<Channel, 'sms'>]: (to: string) => string };
  changeNumber: string;
  signedIn: (to: string) => string;
  errors: { readonly [C in FailureCode]: (detail: ErrorDetail) => string };
}

/** A wait in the unit that reads best: seconds, then minutes, then hours (rounded up). */
export function duration(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 2 * 3600) return `${Math.ceil(seconds / 60)} min`;
  return `${Math.ceil(seconds / 3600)} h`;
}

// What a lock after too many wrong codes means on this device (API.md, "Genuine users
// first"): the devices that signed in with the number before are limited apart, so only
// a new device (or a stranger) waits for the window to free.
const enLocked = (until: string, now = '') =>
  `If this number is ${now}locked after wrong codes, it stays locked on a new device ${until}; a device that signed in with it before can still sign in.`;
const esLocked = (until: string, now = '') =>
  `Si este número quedó ${now}bloqueado por códigos incorrectos, en un dispositivo nuevo sigue bloqueado ${until}; un dispositivo en el que ya iniciaste sesión con este número puede seguir entrando.`;
const ptLocked = (until: string, now = '') =>
  `Se este número foi ${now}bloqueado por códigos errados, num dispositivo novo ele continua bloqueado ${until}; um dispositivo em que você já entrou com este número ainda pode entrar.`;
const frLocked = (until: string, now = '') =>
  `Si ce numéro est ${now}bloqué après des codes erronés, il le reste sur un nouvel appareil ${until} ; un appareil déjà connecté avec ce numéro peut encore se connecter.`;

const en: Messages = {
  title: 'Sign in with your phone',
  intro: 'We will send you a one-time code.',
  close: 'Close',
  nameLabel: 'Your name',
  optional: '(optional)',
  countryLabel: 'Country',
  phoneLabel: 'Phone number',
  phoneHint: 'A mobile number that can receive SMS.',
  challengeLabel: 'Security check',
  send: 'Send code',
  sending: 'Sending…',
  sendIn: (s) => `Send code (wait ${s} s)`,
  codeTitle: 'Enter the code',
  codeSentTo: {
    sms: (to) => `We sent a code to ${to}.`,
    voice: (to) => `A call to ${to} will say the code.`,
    whatsapp: (to) => `The code is on its way to ${to} by WhatsApp.`,
  },
  codeLabel: { sms: 'Code from the SMS', voice: 'Code from the call', whatsapp: 'Code from WhatsApp' },
  codeHint: 'The code expires in a few minutes.',
  verify: 'Verify',
  verifying: 'Checking…',
  resend: 'Resend code',
  resendIn: (s) => `Resend code in ${s} s`,
  resent: (to) => `A new code was sent to ${to}.`,
  switchTo: { sms: 'Text me instead', voice: 'Call me instead', whatsapp: 'Send by WhatsApp' },
  sentOn: {
    voice: (to) => `We are calling ${to}: answer, and listen for the code.`,
    whatsapp: (to) => `We sent a code to ${to} on WhatsApp.`,
  },
  changeNumber: 'Use another number',
  signedIn: (to) => `Signed in as ${to}.`,
  errors: {
    invalid_request: () => 'Something in the request was not right. Please try again.',
    invalid_phone: () => 'This is not a valid mobile number. Check the country and the number.',
    invalid_code_format: ({ channel = 'sms' }) =>
      ({
        sms: 'Type the code exactly as in the SMS: digits only.',
        voice: 'Type the code exactly as the call said it: digits only.',
        whatsapp: 'Type the code exactly as in the WhatsApp message: digits only.',
      })[channel],
    captcha_required: () => 'Please complete the security check first.',
    channel_not_allowed: () => 'This way of sending the code is not offered. Try another.',
    captcha_failed: () => 'The security check failed. Please try it again.',
    forbidden: () => 'This site is not allowed to use the sign-in service.',
    not_found: () => 'The sign-in service could not be found.',
    incorrect_code: ({ attemptsRemaining = 0 }) =>
      `That code is not right. ${attemptsRemaining === 1 ? '1 attempt left.' : `${attemptsRemaining} attempts left.`}`,
    country_not_allowed: () => 'Numbers from this country are not supported.',
    method_not_allowed: () => 'The sign-in service refused the request.',
    code_expired: () => 'This code has expired or was already used. Request a new code.',
    payload_too_large: () => 'The request was too large.',
    unsupported_media_type: () => 'The sign-in service refused the request.',
    phone_unreachable: ({ channel = 'sms' }) =>
      ({
        sms: 'This number cannot receive SMS. Try another number.',
        voice: 'This number cannot be called. Try another number.',
        whatsapp: 'This number cannot receive WhatsApp messages. Try another number.',
      })[channel],
    rate_limited: ({ retryAfterSeconds }) =>
      retryAfterSeconds === undefined
        ? `Too many requests. Please wait and try again. ${enLocked('for as long as the lock lasts')}`
        : `Too many requests. Try again in ${duration(retryAfterSeconds)}. ${enLocked('until then')}`,
    too_many_attempts: () =>
      `Too many wrong codes. This code no longer works: request a new one. ${enLocked('for as long as the lock lasts', 'now ')}`,
    sms_failed: ({ channel = 'sms' }) =>
      ({
        sms: 'The SMS could not be sent. Please try again in a moment.',
        voice: 'The call could not be made. Please try again in a moment.',
        whatsapp: 'The WhatsApp message could not be sent. Please try again in a moment.',
      })[channel],
    service_unavailable: () => 'The sign-in service is busy. Please try again in a moment.',
    internal_error: () => 'Something went wrong on our side. Please try again.',
    network_error: () => 'No connection to the sign-in service. Check your connection and try again.',
    unexpected_response: () => 'The sign-in service answered unexpectedly. Please try again.',
  },
};

const es: Messages = {
  title: 'Inicia sesión con tu teléfono',
  intro: 'Te enviaremos un código de un solo uso.',
  close: 'Cerrar',
  nameLabel: 'Tu nombre',
  optional: '(opcional)',
  countryLabel: 'País',
  phoneLabel: 'Número de teléfono',
  phoneHint: 'Un número móvil que pueda recibir SMS.',
  challengeLabel: 'Comprobación de seguridad',
  send: 'Enviar código',
  sending: 'Enviando…',
  sendIn: (s) => `Enviar código (espera ${s} s)`,
  codeTitle: 'Introduce el código',
  codeSentTo: {
    sms: (to) => `Enviamos un código al ${to}.`,
    voice: (to) => `Una llamada al ${to} te dirá el código.`,
    whatsapp: (to) => `El código va de camino al ${to} por WhatsApp.`,
  },
  codeLabel: { sms: 'Código del SMS', voice: 'Código de la llamada', whatsapp: 'Código de WhatsApp' },
  codeHint: 'El código caduca en unos minutos.',
  verify: 'Verificar',
  verifying: 'Comprobando…',
  resend: 'Reenviar código',
  resendIn: (s) => `Reenviar código en ${s} s`,
  resent: (to) => `Enviamos un código nuevo al ${to}.`,
  switchTo: { sms: 'Envíame un SMS', voice: 'Llámame', whatsapp: 'Enviar por WhatsApp' },
  sentOn: {
    voice: (to) => `Estamos llamando al ${to}: contesta y escucha el código.`,
    whatsapp: (to) => `Enviamos un código al ${to} por WhatsApp.`,
  },
  changeNumber: 'Usar otro número',
  signedIn: (to) => `Sesión iniciada como ${to}.`,
  errors: {
    invalid_request: () => 'Algo en la solicitud no era correcto. Inténtalo de nuevo.',
    invalid_phone: () => 'No es un número móvil válido. Revisa el país y el número.',
    invalid_code_format: ({ channel = 'sms' }) =>
      ({
        sms: 'Escribe el código tal como aparece en el SMS: solo cifras.',
        voice: 'Escribe el código tal como lo dijo la llamada: solo cifras.',
        whatsapp: 'Escribe el código tal como aparece en el mensaje de WhatsApp: solo cifras.',
      })[channel],
    captcha_required: () => 'Completa primero la comprobación de seguridad.',
    channel_not_allowed: () => 'Esta forma de enviar el código no está disponible. Prueba otra.',
    captcha_failed: () => 'La comprobación de seguridad falló. Inténtalo de nuevo.',
    forbidden: () => 'Este sitio no tiene permiso para usar el servicio de inicio de sesión.',
    not_found: () => 'No se encontró el servicio de inicio de sesión.',
    incorrect_code: ({ attemptsRemaining = 0 }) =>
      `El código no es correcto. ${attemptsRemaining === 1 ? 'Queda 1 intento.' : `Quedan ${attemptsRemaining} intentos.`}`,
    country_not_allowed: () => 'No se admiten números de este país.',
    method_not_allowed: () => 'El servicio de inicio de sesión rechazó la solicitud.',
    code_expired: () => 'Este código caducó o ya se usó. Pide un código nuevo.',
    payload_too_large: () => 'La solicitud era demasiado grande.',
    unsupported_media_type: () => 'El servicio de inicio de sesión rechazó la solicitud.',
    phone_unreachable: ({ channel = 'sms' }) =>
      ({
        sms: 'Este número no puede recibir SMS. Prueba con otro número.',
        voice: 'No se puede llamar a este número. Prueba con otro número.',
        whatsapp: 'Este número no puede recibir mensajes de WhatsApp. Prueba con otro número.',
      })[channel],
    rate_limited: ({ retryAfterSeconds }) =>
      retryAfterSeconds === undefined
        ? `Demasiados intentos. Espera e inténtalo de nuevo. ${esLocked('mientras dure el bloqueo')}`
        : `Demasiados intentos. Inténtalo de nuevo en ${duration(retryAfterSeconds)}. ${esLocked('hasta entonces')}`,
    too_many_attempts: () =>
      `Demasiados códigos incorrectos. Este código ya no sirve: pide uno nuevo. ${esLocked('mientras dure el bloqueo', 'ahora ')}`,
    sms_failed: ({ channel = 'sms' }) =>
      ({
        sms: 'No se pudo enviar el SMS. Inténtalo de nuevo en un momento.',
        voice: 'No se pudo hacer la llamada. Inténtalo de nuevo en un momento.',
        whatsapp: 'No se pudo enviar el mensaje de WhatsApp. Inténtalo de nuevo en un momento.',
      })[channel],
    service_unavailable: () => 'El servicio está ocupado. Inténtalo de nuevo en un momento.',
    internal_error: () => 'Algo falló por nuestra parte. Inténtalo de nuevo.',
    network_error: () => 'Sin conexión con el servicio. Revisa tu conexión e inténtalo de nuevo.',
    unexpected_response: () => 'El servicio respondió de forma inesperada. Inténtalo de nuevo.',
  },
};

const pt: Messages = {
  title: 'Entre com o seu telefone',
  intro: 'Enviaremos um código de uso único.',
  close: 'Fechar',
  nameLabel: 'O seu nome',
  optional: '(opcional)',
  countryLabel: 'País',
  phoneLabel: 'Número de telefone',
  phoneHint: 'Um número de celular que receba SMS.',
  challengeLabel: 'Verificação de segurança',
  send: 'Enviar código',
  sending: 'Enviando…',
  sendIn: (s) => `Enviar código (aguarde ${s} s)`,
  codeTitle: 'Digite o código',
  codeSentTo: {
    sms: (to) => `Enviamos um código para ${to}.`,
    voice: (to) => `Uma ligação para ${to} vai dizer o código.`,
    whatsapp: (to) => `O código está a caminho de ${to} pelo WhatsApp.`,
  },
  codeLabel: { sms: 'Código do SMS', voice: 'Código da ligação', whatsapp: 'Código do WhatsApp' },
  codeHint: 'O código expira em poucos minutos.',
  verify: 'Verificar',
  verifying: 'Verificando…',
  resend: 'Reenviar código',
  resendIn: (s) => `Reenviar código em ${s} s`,
  resent: (to) => `Enviamos um novo código para ${to}.`,
  switchTo: { sms: 'Enviar por SMS', voice: 'Receber uma ligação', whatsapp: 'Enviar pelo WhatsApp' },
  sentOn: {
    voice: (to) => `Estamos ligando para ${to}: atenda e ouça o código.`,
    whatsapp: (to) => `Enviamos um código para ${to} pelo WhatsApp.`,
  },
  changeNumber: 'Usar outro número',
  signedIn: (to) => `Sessão iniciada como ${to}.`,
  errors: {
    invalid_request: () => 'Algo no pedido não estava certo. Tente novamente.',
    invalid_phone: () => 'Este não é um número de celular válido. Confira o país e o número.',
    invalid_code_format: ({ channel = 'sms' }) =>
      ({
        sms: 'Digite o código exatamente como no SMS: apenas dígitos.',
        voice: 'Digite o código exatamente como a ligação disse: apenas dígitos.',
        whatsapp: 'Digite o código exatamente como na mensagem do WhatsApp: apenas dígitos.',
      })[channel],
    captcha_required: () => 'Conclua primeiro a verificação de segurança.',
    channel_not_allowed: () => 'Esta forma de envio do código não está disponível. Tente outra.',
    captcha_failed: () => 'A verificação de segurança falhou. Tente novamente.',
    forbidden: () => 'Este site não tem permissão para usar o serviço de login.',
    not_found: () => 'O serviço de login não foi encontrado.',
    incorrect_code: ({ attemptsRemaining = 0 }) =>
      `Código incorreto. ${attemptsRemaining === 1 ? 'Resta 1 tentativa.' : `Restam ${attemptsRemaining} tentativas.`}`,
    country_not_allowed: () => 'Números deste país não são aceitos.',
    method_not_allowed: () => 'O serviço de login recusou o pedido.',
    code_expired: () => 'Este código expirou ou já foi usado. Peça um novo código.',
    payload_too_large: () => 'O pedido era grande demais.',
    unsupported_media_type: () => 'O serviço de login recusou o pedido.',
    phone_unreachable: ({ channel = 'sms' }) =>
      ({
        sms: 'Este número não pode receber SMS. Tente outro número.',
        voice: 'Não é possível ligar para este número. Tente outro número.',
        whatsapp: 'Este número não pode receber mensagens do WhatsApp. Tente outro número.',
      })[channel],
    rate_limited: ({ retryAfterSeconds }) =>
      retryAfterSeconds === undefined
        ? `Tentativas demais. Aguarde e tente novamente. ${ptLocked('enquanto durar o bloqueio')}`
        : `Tentativas demais. Tente novamente em ${duration(retryAfterSeconds)}. ${ptLocked('até lá')}`,
    too_many_attempts: () =>
      `Códigos errados demais. Este código não vale mais: peça um novo. ${ptLocked('enquanto durar o bloqueio', 'agora ')}`,
    sms_failed: ({ channel = 'sms' }) =>
      ({
        sms: 'Não foi possível enviar o SMS. Tente novamente em instantes.',
        voice: 'Não foi possível fazer a ligação. Tente novamente em instantes.',
        whatsapp: 'Não foi possível enviar a mensagem do WhatsApp. Tente novamente em instantes.',
      })[channel],
    service_unavailable: () => 'O serviço está ocupado. Tente novamente em instantes.',
    internal_error: () => 'Algo deu errado do nosso lado. Tente novamente.',
    network_error: () => 'Sem conexão com o serviço. Verifique a sua conexão e tente novamente.',
    unexpected_response: () => 'O serviço respondeu de forma inesperada. Tente novamente.',
  },
};

const fr: Messages = {
  title: 'Connectez-vous avec votre téléphone',
  intro: 'Nous vous enverrons un code à usage unique.',
  close: 'Fermer',
  nameLabel: 'Votre nom',
  optional: '(facultatif)',
  countryLabel: 'Pays',
  phoneLabel: 'Numéro de téléphone',
  phoneHint: 'Un numéro de mobile qui reçoit les SMS.',
  challengeLabel: 'Vérification de sécurité',
  send: 'Envoyer le code',
  sending: 'Envoi…',
  sendIn: (s) => `Envoyer le code (attendez ${s} s)`,
  codeTitle: 'Saisissez le code',
  codeSentTo: {
    sms: (to) => `Nous avons envoyé un code au ${to}.`,
    voice: (to) => `Un appel au ${to} va vous dire le code.`,
    whatsapp: (to) => `Le code est en route vers le ${to} sur WhatsApp.`,
  },
  codeLabel: { sms: 'Code reçu par SMS', voice: 'Code entendu pendant l’appel', whatsapp: 'Code reçu sur WhatsApp' },
  codeHint: 'Le code expire dans quelques minutes.',
  verify: 'Valider',
  verifying: 'Vérification…',
  resend: 'Renvoyer le code',
  resendIn: (s) => `Renvoyer le code dans ${s} s`,
  resent: (to) => `Un nouveau code a été envoyé au ${to}.`,
  switchTo: { sms: 'Recevoir un SMS', voice: 'M’appeler plutôt', whatsapp: 'Envoyer par WhatsApp' },
  sentOn: {
    voice: (to) => `Nous appelons le ${to} : décrochez et écoutez le code.`,
    whatsapp: (to) => `Nous avons envoyé un code au ${to} sur WhatsApp.`,
  },
  changeNumber: 'Utiliser un autre numéro',
  signedIn: (to) => `Connecté en tant que ${to}.`,
  errors: {
    invalid_request: () => 'La demande n’était pas correcte. Veuillez réessayer.',
    invalid_phone: () => 'Ce n’est pas un numéro de mobile valide. Vérifiez le pays et le numéro.',
    invalid_code_format: ({ channel = 'sms' }) =>
      ({
        sms: 'Saisissez le code tel qu’il figure dans le SMS : des chiffres uniquement.',
        voice: 'Saisissez le code tel que l’appel l’a dit : des chiffres uniquement.',
        whatsapp: 'Saisissez le code tel qu’il figure dans le message WhatsApp : des chiffres uniquement.',
      })[channel],
    captcha_required: () => 'Veuillez d’abord passer la vérification de sécurité.',
    channel_not_allowed: () => 'Ce mode d’envoi du code n’est pas proposé. Essayez-en un autre.',
    captcha_failed: () => 'La vérification de sécurité a échoué. Veuillez réessayer.',
    forbidden: () => 'Ce site n’est pas autorisé à utiliser le service de connexion.',
    not_found: () => 'Le service de connexion est introuvable.',
    incorrect_code: ({ attemptsRemaining = 0 }) =>
      `Ce code est incorrect. ${attemptsRemaining === 1 ? 'Il reste 1 essai.' : `Il reste ${attemptsRemaining} essais.`}`,
    country_not_allowed: () => 'Les numéros de ce pays ne sont pas acceptés.',
    method_not_allowed: () => 'Le service de connexion a refusé la demande.',
    code_expired: () => 'Ce code a expiré ou a déjà servi. Demandez un nouveau code.',
    payload_too_large: () => 'La demande était trop volumineuse.',
    unsupported_media_type: () => 'Le service de connexion a refusé la demande.',
    phone_unreachable: ({ channel = 'sms' }) =>
      ({
        sms: 'Ce numéro ne peut pas recevoir de SMS. Essayez un autre numéro.',
        voice: 'Ce numéro ne peut pas être appelé. Essayez un autre numéro.',
        whatsapp: 'Ce numéro ne peut pas recevoir de messages WhatsApp. Essayez un autre numéro.',
      })[channel],
    rate_limited: ({ retryAfterSeconds }) =>
      retryAfterSeconds === undefined
        ? `Trop de tentatives. Patientez puis réessayez. ${frLocked('tant que dure le blocage')}`
        : `Trop de tentatives. Réessayez dans ${duration(retryAfterSeconds)}. ${frLocked('jusque-là')}`,
    too_many_attempts: () =>
      `Trop de codes erronés. Ce code n’est plus valable : demandez-en un nouveau. ${frLocked('tant que dure le blocage', 'désormais ')}`,
    sms_failed: ({ channel = 'sms' }) =>
      ({
        sms: 'Le SMS n’a pas pu être envoyé. Réessayez dans un instant.',
        voice: 'L’appel n’a pas pu être passé. Réessayez dans un instant.',
        whatsapp: 'Le message WhatsApp n’a pas pu être envoyé. Réessayez dans un instant.',
      })[channel],
    service_unavailable: () => 'Le service est occupé. Réessayez dans un instant.',
    internal_error: () => 'Une erreur est survenue de notre côté. Veuillez réessayer.',
    network_error: () => 'Pas de connexion au service. Vérifiez votre connexion et réessayez.',
    unexpected_response: () => 'Le service a répondu de façon inattendue. Veuillez réessayer.',
  },
};

/** The texts of each language the modal speaks. */
export const catalogs = { en, es, pt, fr } as const;
export type Language = keyof typeof catalogs;

/** The language for a BCP 47 tag (`pt-BR` speaks `pt`); English where the modal has none. */
export function languageOf(tag: string | undefined): Language {
  const base = (tag ?? '').toLowerCase().split(/[-_]/)[0] ?? '';
  return Object.hasOwn(catalogs, base) ? (base as Language) : 'en';
}
