/**
 * QR codes for proxy URLs (`socks5://user:pass@host:1080`), so a customer can
 * set a phone up by scanning instead of typing a password.
 */
import QRCode from 'qrcode';

/** Level M restores up to about 15 % of damaged modules, enough for a photo of a screen. */
const ERROR_CORRECTION = 'M';
/** Quiet zone in modules. The standard asks for 4; chat apps frame images in white anyway. */
const MARGIN_MODULES = 2;
const TARGET_WIDTH_PX = 512;

/**
 * A black-on-white PNG of `text` as a QR code, error correction M, 2 modules
 * of margin, as close to 512 px wide as whole pixels per module allow
 * (never wider; `qrcode`'s own `width` option would give uneven modules).
 */
export async function renderQrPng(text: string): Promise<Buffer> {
  const { modules } = QRCode.create(text, { errorCorrectionLevel: ERROR_CORRECTION });
  const scale = Math.max(1, Math.floor(TARGET_WIDTH_PX / (modules.size + 2 * MARGIN_MODULES)));
  return QRCode.toBuffer(text, {
    type: 'png',
    errorCorrectionLevel: ERROR_CORRECTION,
    margin: MARGIN_MODULES,
    scale,
    color: { dark: '#000000ff', light: '#ffffffff' },
  });
}
