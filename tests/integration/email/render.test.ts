import { describe, expect, it } from '@jest/globals';

import { renderEmail } from '../../../core/email/render.js';
import { notificationEvents } from '../../../models/notification.js';

const hostile = '<img src=x onerror=alert(1)>';

describe('renderEmail', () => {
  it.each([...notificationEvents])(
    'renders %s with a subject, a text and an HTML body that escapes the data',
    (event) => {
      const mail = renderEmail(
        {
          event,
          data: {
            planCode: hostile,
            reason: hostile,
            text: hostile,
            location: hostile,
            amountMinor: 100_000,
            currency: 'NGN',
          },
        },
        { publicUrl: 'https://atlantic.test' },
      );
      expect(mail.subject.trim()).not.toBe('');
      expect(mail.subject).not.toMatch(/[\r\n]/);
      expect(mail.text.trim()).not.toBe('');
      expect(mail.html).toContain('<p>');
      expect(mail.html).not.toContain('<img');
    },
  );

  it('links the next step to the Telegram bot when there is one, else to the website', () => {
    const withBot = renderEmail(
      { event: 'wallet_empty', data: {} },
      { publicUrl: 'https://atlantic.test', telegramBotUsername: '@atlantic_bot' },
    );
    expect(withBot.link).toEqual({ label: 'Top up in Telegram', url: 'https://t.me/atlantic_bot' });
    const webOnly = renderEmail(
      { event: 'wallet_empty', data: {} },
      { publicUrl: 'https://atlantic.test' },
    );
    expect(webOnly.link).toEqual({ label: 'Top up', url: 'https://atlantic.test' });
    expect(webOnly.text).toContain('Top up: https://atlantic.test');
  });

  it('never links to a payment URL that is not http(s)', () => {
    const mail = renderEmail(
      {
        event: 'payment_failed',
        data: { amountMinor: 100, currency: 'NGN', authorizationUrl: 'javascript:alert(1)' },
      },
      {},
    );
    expect(mail.link).toBeNull();
    expect(mail.html).not.toContain('javascript:');
  });
});
