/** Reads attachments out of a raw message, for the email deliverer's tests. */
export interface MailAttachmentPart {
  filename: string;
  contentType: string;
  content: Buffer;
}

/** The parts of a raw message with a `Content-Disposition: attachment`, decoded. */
export function attachmentsOf(raw: string): MailAttachmentPart[] {
  const found: MailAttachmentPart[] = [];
  const walk = (part: string): void => {
    const text = part.replace(/\r\n/g, '\n');
    const end = text.indexOf('\n\n');
    const head = (end === -1 ? text : text.slice(0, end)).replace(/\n[ \t]+/g, ' ');
    const body = end === -1 ? '' : text.slice(end + 2);
    const header = (name: string): string =>
      new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(head)?.[1]?.trim() ?? '';
    const type = header('content-type');
    const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
    if (/^multipart\//i.test(type) && boundary !== undefined) {
      for (const section of body.split(`--${boundary}`).slice(1)) {
        if (!section.startsWith('--')) walk(section.replace(/^\n/, ''));
      }
      return;
    }
    const disposition = header('content-disposition');
    if (!/^attachment/i.test(disposition)) return;
    const encoding = header('content-transfer-encoding').toLowerCase();
    found.push({
      filename: /filename="?([^";]+)"?/i.exec(disposition)?.[1] ?? '',
      contentType: type.split(';')[0]?.trim().toLowerCase() ?? '',
      content:
        encoding === 'base64'
          ? Buffer.from(body.replace(/\s+/g, ''), 'base64')
          : Buffer.from(body, 'utf8'),
    });
  };
  walk(raw);
  return found;
}
