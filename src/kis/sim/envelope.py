"""KIS REST answer shapes: the rt_cd/msg_cd/msg1 envelope, the OAuth error shape, msg1 padding."""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from starlette.responses import Response

from kis.broker.codes import EGW_MESSAGES, OPSQ_MESSAGES

JSON_TYPE = "application/json; charset=utf-8"
MSG1_WIDTH = 80  # account/order TRs pad msg1 with spaces to this width

# KIS's own response headers (tr_id, tr_cont, gt_uid) go out lowercase, the standard ones capitalised:
# the official client (open-trading-api APIResp._setHeader) makes a namedtuple of every all-lowercase
# header name, which a lowercase "content-type" would crash (reference §3.2).
_STANDARD_HEADER_NAMES = {b"content-type": b"Content-Type", b"content-length": b"Content-Length"}


class KisHttpError(Exception):
    """Raised inside a handler; rendered as the envelope KIS would send."""

    def __init__(self, status: int, rt_cd: str, msg_cd: str, msg1: str) -> None:
        super().__init__(f"{msg_cd} {msg1}")
        self.status = status
        self.rt_cd = rt_cd
        self.msg_cd = msg_cd
        self.msg1 = msg1


class OAuthError(Exception):
    """tokenP/Approval/revokeP errors: HTTP 403 with ``error_code``/``error_description``, no rt_cd."""

    def __init__(self, code: str, status: int = 403) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


def gateway_error(code: str, status: int = 500) -> KisHttpError:
    message = EGW_MESSAGES.get(code) or OPSQ_MESSAGES.get(code, "")
    return KisHttpError(status, "1", code, message)


def input_error(field: str) -> KisHttpError:
    """The OPSQ2001 shape measured on the real server for a bad or missing input field."""
    return KisHttpError(200, "2", "OPSQ2001", f"ERROR : INPUT INVALID_CHECK_{field.upper()}")


def business_reject(msg_cd: str, msg1: str, rt_cd: str = "7") -> KisHttpError:
    return KisHttpError(200, rt_cd, msg_cd, msg1)


def pad_msg(text: str) -> str:
    return text.ljust(MSG1_WIDTH)


def _wire_names(response: Response) -> Response:
    response.raw_headers = [(_STANDARD_HEADER_NAMES.get(name, name), value)
                            for name, value in response.raw_headers]
    return response


def kis_json(body: dict[str, Any], status: int = 200, tr_id: str = "", tr_cont: str = "") -> Response:
    headers = {"tr_id": tr_id, "tr_cont": tr_cont, "gt_uid": secrets.token_hex(16)}
    response = Response(orjson.dumps(body), status_code=status, media_type=JSON_TYPE, headers=headers)
    return _wire_names(response)


def envelope_response(err: KisHttpError, tr_id: str = "", pad: bool = False) -> Response:
    body = {"rt_cd": err.rt_cd, "msg_cd": err.msg_cd, "msg1": pad_msg(err.msg1) if pad else err.msg1}
    return kis_json(body, err.status, tr_id)


def oauth_error_response(err: OAuthError) -> Response:
    description = EGW_MESSAGES.get(err.code, "잘못된 요청입니다.")
    return _wire_names(Response(orjson.dumps({"error_description": description, "error_code": err.code}),
                                status_code=err.status, media_type=JSON_TYPE))
