// The local run's stand-in for a bot challenge widget (`/?challenge=fake`), for the fake
// siteverify of dev/fake-captcha: each press hands over a new passing token, as a real
// widget hands over a new one at each solve. Part of the local build only.
import { useState } from 'react';

import type { ChallengeProps } from '@otp-service/react';

let issued = 0;

/** A token that dev/fake-captcha passes once (`pass:::<score>`), new at each call. */
function passingToken(): string {
  issued += 1;
  return `pass:::0.${Date.now()}${issued}`;
}

export default function FakeChallenge({ onToken }: ChallengeProps) {
  const [solved, setSolved] = useState(false);
  return (
    <div className="fake-challenge" data-testid="fake-challenge">
      <button
        type="button"
        disabled={solved}
        onClick={() => {
          setSolved(true);
          onToken(passingToken());
        }}
      >
        {solved ? 'Check passed (fake)' : 'I am human (fake check)'}
      </button>
    </div>
  );
}
