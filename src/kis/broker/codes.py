"""KIS message codes with the exact texts the real servers send (reference §5, §6.2)."""

from __future__ import annotations

# REST gateway errors (HTTP 500 with the rt_cd/msg_cd/msg1 envelope).
EGW_MESSAGES: dict[str, str] = {
    "EGW00002": "서버 에러가 발생하였습니다.",
    "EGW00101": "유효하지 않은 요청입니다.",
    "EGW00102": "AppKey는 필수입니다.",
    "EGW00103": "유효하지 않은 AppKey입니다.",
    "EGW00104": "AppSecret는 필수입니다.",
    "EGW00105": "유효하지 않은 AppSecret입니다.",
    "EGW00106": "grant_type이 유효하지 않습니다.",
    "EGW00121": "유효하지 않은 token 입니다.",
    "EGW00123": "기간이 만료된 token 입니다.",
    "EGW00132": "Content-Type 오류입니다.",
    "EGW00133": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)",
    "EGW00201": "초당 거래건수를 초과하였습니다.",
    "EGW00205": "credentials_type이 유효하지 않습니다.(Bearer)",
    "EGW00213": "모의투자 TR 이 아닙니다.",
}

OPSQ_MESSAGES: dict[str, str] = {
    "OPSQ0002": "없는 서비스 코드 입니다",
    "OPSQ9995": "JSON BODY가 없습니다.",
    "OPSQ9997": "JSON PARSING ERROR",
    "OPSQ9999": "TR_ID가 없습니다.",
}

# Success codes.
MSG_QUOTE_OK = ("MCA00000", "정상처리 되었습니다.")
MSG_INQUIRY_DONE = ("KIOK0510", "조회가 완료되었습니다")
MSG_INQUIRY_LAST = ("KIOK0460", "조회 되었습니다. (마지막 자료)")
MSG_INQUIRY_MORE = ("KIOK0490", "조회가 계속됩니다")
MSG_INQUIRY_EMPTY = ("KIOK0560", "조회할 내용이 없습니다")  # an empty list: rt_cd "0"; a missing record: "7"
MSG_SEARCHED = ("KIOK0530", "조회되었습니다")  # search-info / search-stock-info
MSG_ORDER_SENT = ("APBK0013", "주문 전송 완료 되었습니다.")

# WebSocket control codes (exact msg1 strings seen on the wire).
WS_SUBSCRIBE_OK = ("OPSP0000", "SUBSCRIBE SUCCESS")
WS_UNSUBSCRIBE_OK = ("OPSP0001", "UNSUBSCRIBE SUCCESS")
WS_ALREADY_SUBSCRIBED = ("OPSP0002", "ALREADY IN SUBSCRIBE")
WS_UNSUBSCRIBE_NOT_FOUND = ("OPSP0003", "UNSUBSCRIBE ERROR(not found!)")
WS_MANDATORY_MISSING = ("OPSP0003", "MANDATORY INPUT MISSING")
WS_MAX_SUBSCRIBE = ("OPSP0008", "MAX SUBSCRIBE OVER")
WS_INVALID_APPROVAL = ("OPSP0011", "invalid approval : ")
WS_APPKEY_IN_USE = ("OPSP8996", "ALREADY IN USE appkey")
WS_INVALID_TR_TYPE = ("OPSP8997", "invalid tr_type")
WS_MISSING_TR_KEY = ("OPSP9990", "MISSING TR_KEY")
WS_MISSING_INPUT = ("OPSP9991", "MISSING INPUT")
WS_MISSING_BODY = ("OPSP9992", "MISSING BODY")
WS_MISSING_HEADER = ("OPSP9998", "MISSING HEADER")
WS_JSON_PARSE = ("OPSP9999", "JSON PARSING ERROR : invalid json format")
WS_INVALID_TR_ID = ("OPSP0007", "invalid tr_id")
