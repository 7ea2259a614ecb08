import { cleanup } from '@testing-library/react';
import { afterEach } from 'vitest';

afterEach(() => {
  cleanup();
  // The modal keeps device tokens in localStorage by default: each test starts without any.
  localStorage.clear();
});
