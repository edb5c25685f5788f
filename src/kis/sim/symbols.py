"""A small real symbol master: the instruments the simulator trades, with plausible base prices."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KrxSymbol:
    code: str
    name: str
    market: str  # KOSPI / KOSDAQ (rprs_mrkt_kor_name)
    sector: str  # bstp_kor_isnm
    base_price: int  # previous close (기준가), on the tick grid
    listed_shares: int


@dataclass(frozen=True)
class UsSymbol:
    symbol: str
    name: str
    exchange: str  # KIS EXCD: NAS, NYS, AMS
    base_price: float  # previous close, USD
    decimals: int = 4


KRX_SYMBOLS: tuple[KrxSymbol, ...] = (
    KrxSymbol("005930", "삼성전자", "KOSPI200", "전기·전자", 71900, 5_969_782_550),
    KrxSymbol("000660", "SK하이닉스", "KOSPI200", "전기·전자", 128500, 728_002_365),
    KrxSymbol("373220", "LG에너지솔루션", "KOSPI200", "전기·전자", 380000, 234_000_000),
    KrxSymbol("207940", "삼성바이오로직스", "KOSPI200", "의약품", 780000, 71_174_000),
    KrxSymbol("005380", "현대차", "KOSPI200", "운수장비", 215000, 209_416_191),
    KrxSymbol("000270", "기아", "KOSPI200", "운수장비", 98000, 397_672_632),
    KrxSymbol("068270", "셀트리온", "KOSPI200", "의약품", 178000, 216_879_605),
    KrxSymbol("005490", "POSCO홀딩스", "KOSPI200", "철강금속", 372000, 84_571_230),
    KrxSymbol("035420", "NAVER", "KOSPI200", "서비스업", 187000, 158_437_008),
    KrxSymbol("035720", "카카오", "KOSPI200", "서비스업", 41250, 443_944_659),
    KrxSymbol("051910", "LG화학", "KOSPI200", "화학", 315000, 70_592_343),
    KrxSymbol("006400", "삼성SDI", "KOSPI200", "전기·전자", 298000, 68_764_530),
    KrxSymbol("105560", "KB금융", "KOSPI200", "금융업", 78500, 393_468_455),
    KrxSymbol("055550", "신한지주", "KOSPI200", "금융업", 52300, 509_328_120),
    KrxSymbol("012330", "현대모비스", "KOSPI200", "운수장비", 236500, 93_037_919),
    KrxSymbol("028260", "삼성물산", "KOSPI200", "유통업", 131000, 169_976_544),
    KrxSymbol("066570", "LG전자", "KOSPI200", "전기·전자", 95600, 163_647_814),
    KrxSymbol("003550", "LG", "KOSPI200", "기타금융", 78200, 157_300_993),
    KrxSymbol("017670", "SK텔레콤", "KOSPI200", "통신업", 51800, 214_790_053),
    KrxSymbol("015760", "한국전력", "KOSPI200", "전기가스업", 21450, 641_964_077),
    KrxSymbol("034730", "SK", "KOSPI200", "기타금융", 168400, 72_969_889),
    KrxSymbol("096770", "SK이노베이션", "KOSPI200", "화학", 113900, 100_141_524),
    KrxSymbol("136480", "하림", "KOSDAQ", "음식료·담배", 3190, 107_457_563),
    KrxSymbol("247540", "에코프로비엠", "KOSDAQ", "일반전기전자", 187300, 97_801_344),
    KrxSymbol("086520", "에코프로", "KOSDAQ", "금융", 92400, 133_138_340),
    KrxSymbol("091990", "셀트리온헬스케어", "KOSDAQ", "유통", 1890, 158_000_000),
)

US_SYMBOLS: tuple[UsSymbol, ...] = (
    UsSymbol("AAPL", "APPLE INC", "NAS", 169.7850),
    UsSymbol("NVDA", "NVIDIA CORP", "NAS", 223.9800),
    UsSymbol("MSFT", "MICROSOFT CORP", "NAS", 415.2000),
    UsSymbol("TSLA", "TESLA INC", "NAS", 248.5000),
    UsSymbol("AMZN", "AMAZON.COM INC", "NAS", 186.4000),
    UsSymbol("KO", "COCA-COLA CO", "NYS", 62.1500),
    UsSymbol("SPY", "SPDR S&P 500 ETF TRUST", "AMS", 561.3000),
)

KRX_BY_CODE: dict[str, KrxSymbol] = {s.code: s for s in KRX_SYMBOLS}
US_BY_SYMBOL: dict[str, UsSymbol] = {s.symbol: s for s in US_SYMBOLS}
