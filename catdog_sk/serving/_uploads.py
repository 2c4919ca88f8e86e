"""Reading requests: bodies bounded while they stream, exact media types, images from multipart or JSON.

Every refusal is a :class:`Problem` (an HTTP status and one sentence); the app turns it into the
service's one error body ``{"error", "status"}`` and counts it in ``/metrics``.
"""

import base64
import binascii
import json

__all__ = ["Problem", "MAX_IMAGES_PER_REQUEST", "MAX_FEEDBACK_BYTES", "read_body", "media_type", "parse_json",
           "read_uploads"]

#: Images one /predict request may carry; more get 413.
MAX_IMAGES_PER_REQUEST = 16

#: Largest /feedback body (a request id, a label and an item number fit in far less).
MAX_FEEDBACK_BYTES = 4096


class Problem(Exception):
    """A request the service refuses: ``status`` (4xx/5xx) and a message for the client."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def media_type(request):
    """The request's media type, without parameters, lower case ('' when missing)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_body(request, limit):
    """The request body, read chunk by chunk; 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"Request body of {int(declared):,} bytes is larger than the limit of {limit:,} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"Request body is larger than the limit of {limit:,} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body):
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser allows
        raise Problem(422, "Body is not valid JSON.") from None


def _b64_limit(max_upload_bytes):
    return 4 * (max_upload_bytes // 3 + 2)


async def read_uploads(request, max_upload_bytes):
    """``[(name, bytes)]`` from a multipart form (fields with files) or JSON ``{"images": [base64, ...]}``."""
    kind = media_type(request)
    if kind not in ("multipart/form-data", "application/json"):
        raise Problem(415, "Send images as multipart/form-data (field 'file') or as JSON "
                           '{"images": ["<base64>", ...]}.')
    body_limit = MAX_IMAGES_PER_REQUEST * (_b64_limit(max_upload_bytes) + 1024) + 65536
    body = await read_body(request, body_limit)
    if kind == "multipart/form-data":
        return await _form_uploads(request, body, max_upload_bytes)
    parsed = parse_json(body)
    images = parsed.get("images") if isinstance(parsed, dict) else None
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise Problem(422, 'JSON body must be {"images": ["<base64>", ...]}.')
    if len(images) > MAX_IMAGES_PER_REQUEST:
        raise Problem(413, f"{len(images)} images in one request; at most {MAX_IMAGES_PER_REQUEST}.")
    items = []
    for k, text in enumerate(images):
        if len(text) > _b64_limit(max_upload_bytes):
            raise Problem(413, f"Image {k} is larger than {max_upload_bytes:,} bytes.")
        try:
            items.append((f"image{k}", base64.b64decode(text, validate=True)))
        except (binascii.Error, ValueError):
            raise Problem(422, f"Image {k} is not valid base64.") from None
    return items


async def _form_uploads(request, body, max_upload_bytes):
    request._body = body  # starlette parses the form from the body already read (and bounded)
    try:
        form = await request.form(max_files=MAX_IMAGES_PER_REQUEST, max_fields=MAX_IMAGES_PER_REQUEST)
    except Exception as exc:  # noqa: BLE001 - a malformed form is the client's error
        raise Problem(422 if "Too many" not in str(exc) else 413, f"Malformed multipart body: {exc}") from None
    items = []
    for name, value in form.multi_items():
        if hasattr(value, "read"):
            items.append((value.filename or name, await value.read(max_upload_bytes + 1)))
    return items
