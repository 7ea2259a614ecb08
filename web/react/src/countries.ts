// The country picker's options: every country with its calling code, named in the
// page's language, and the default country read from the browser's locale.
import { getCountries, getCountryCallingCode, type CountryCode } from 'libphonenumber-js/min';

export interface CountryOption {
  code: CountryCode;
  name: string;
  callingCode: string;
}

const known = new Set<string>(getCountries());

export function isCountry(code: string | undefined): code is CountryCode {
  return code !== undefined && known.has(code);
}

/** All countries, sorted by their name in `language`. */
export function countryOptions(language: string): CountryOption[] {
  let names: Intl.DisplayNames | undefined;
  try {
    names = new Intl.DisplayNames([language], { type: 'region' });
  } catch {
    names = undefined;
  }
  return getCountries()
    .map((code) => ({ code, name: names?.of(code) ?? code, callingCode: getCountryCallingCode(code) }))
    .sort((a, b) => a.name.localeCompare(b.name, language));
}

/** The country of a locale tag: its region (`en-GB`), else its likely one (`fr` → FR). */
export function countryOfLocale(tag: string | undefined): CountryCode | undefined {
  if (!tag) return undefined;
  try {
    const region = new Intl.Locale(tag).maximize().region;
    return isCountry(region) ? region : undefined;
  } catch {
    return undefined;
  }
}
