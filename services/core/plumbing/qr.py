"""QR codes as data URIs (segno: pure Python, small SVG)."""

from __future__ import annotations


def qr_data_uris(payload: str) -> dict[str, str]:
    # Imported on the first QR code drawn: a process that never draws one (the workers, an
    # API that only checks logins) does not hold segno and the XML writer it brings.
    import segno

    qr = segno.make(payload, error="m", micro=False)
    return {
        "qr_svg": qr.svg_data_uri(scale=4, border=4),
        "qr_png": qr.png_data_uri(scale=4, border=4),
    }
