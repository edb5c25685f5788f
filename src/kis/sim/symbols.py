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
    KrxSymbol("005935", "삼성전자우", "KOSPI", "전기·전자", 58700, 815_974_664),
    KrxSymbol("005385", "현대차우", "KOSPI", "운수장비", 168000, 24_356_685),
    KrxSymbol("032830", "삼성생명", "KOSPI200", "보험", 86500, 200_000_000),
    KrxSymbol("086790", "하나금융지주", "KOSPI200", "금융업", 58900, 292_356_598),
    KrxSymbol("003670", "포스코퓨처엠", "KOSPI200", "비금속광물", 231000, 77_463_220),
    KrxSymbol("010130", "고려아연", "KOSPI200", "철강금속", 512000, 20_703_283),
    KrxSymbol("009150", "삼성전기", "KOSPI200", "전기·전자", 142300, 74_693_696),
    KrxSymbol("018260", "삼성에스디에스", "KOSPI200", "서비스업", 153200, 77_377_800),
    KrxSymbol("033780", "KT&G", "KOSPI200", "음식료품", 92100, 122_451_946),
    KrxSymbol("030200", "KT", "KOSPI200", "통신업", 38450, 257_860_760),
    KrxSymbol("011200", "HMM", "KOSPI200", "운수창고업", 17920, 697_525_262),
    KrxSymbol("010950", "S-Oil", "KOSPI200", "화학", 64300, 112_582_792),
    KrxSymbol("034020", "두산에너빌리티", "KOSPI200", "기계", 19450, 640_561_146),
    KrxSymbol("090430", "아모레퍼시픽", "KOSPI200", "화학", 143500, 58_492_759),
    KrxSymbol("051900", "LG생활건강", "KOSPI200", "화학", 385000, 15_618_197),
    KrxSymbol("036570", "엔씨소프트", "KOSPI200", "서비스업", 198000, 21_954_022),
    KrxSymbol("251270", "넷마블", "KOSPI200", "서비스업", 56800, 85_930_164),
    KrxSymbol("259960", "크래프톤", "KOSPI200", "서비스업", 289000, 48_163_780),
    KrxSymbol("352820", "하이브", "KOSPI200", "서비스업", 192300, 41_651_773),
    KrxSymbol("323410", "카카오뱅크", "KOSPI200", "금융업", 22450, 476_848_310),
    KrxSymbol("377300", "카카오페이", "KOSPI200", "서비스업", 27650, 133_900_000),
    KrxSymbol("011170", "롯데케미칼", "KOSPI200", "화학", 98700, 42_776_329),
    KrxSymbol("024110", "기업은행", "KOSPI200", "은행", 13780, 797_414_236),
    KrxSymbol("316140", "우리금융지주", "KOSPI200", "금융업", 14830, 742_591_501),
    KrxSymbol("138040", "메리츠금융지주", "KOSPI200", "금융업", 81200, 190_136_000),
    KrxSymbol("000810", "삼성화재", "KOSPI200", "보험", 312000, 47_374_837),
    KrxSymbol("029780", "삼성카드", "KOSPI200", "금융업", 38500, 115_855_080),
    KrxSymbol("010140", "삼성중공업", "KOSPI200", "운수장비", 10830, 880_000_000),
    KrxSymbol("009540", "HD한국조선해양", "KOSPI200", "운수장비", 174800, 70_773_116),
    KrxSymbol("042660", "한화오션", "KOSPI200", "운수장비", 33950, 306_413_394),
    KrxSymbol("012450", "한화에어로스페이스", "KOSPI200", "기계", 312500, 50_630_000),
    KrxSymbol("047810", "한국항공우주", "KOSPI200", "운수장비", 54300, 97_475_107),
    KrxSymbol("064350", "현대로템", "KOSPI200", "운수장비", 58400, 109_142_293),
    KrxSymbol("267250", "HD현대", "KOSPI200", "기타금융", 76800, 78_993_085),
    KrxSymbol("329180", "HD현대중공업", "KOSPI200", "운수장비", 228500, 88_773_116),
    KrxSymbol("011780", "금호석유", "KOSPI200", "화학", 152600, 27_233_578),
    KrxSymbol("005830", "DB손해보험", "KOSPI200", "보험", 112000, 70_800_000),
    KrxSymbol("001450", "현대해상", "KOSPI200", "보험", 31800, 89_400_000),
    KrxSymbol("088350", "한화생명", "KOSPI200", "보험", 2935, 868_530_000),
    KrxSymbol("139480", "이마트", "KOSPI200", "유통업", 66700, 27_875_819),
    KrxSymbol("023530", "롯데쇼핑", "KOSPI200", "유통업", 58600, 28_288_755),
    KrxSymbol("004020", "현대제철", "KOSPI200", "철강금속", 25400, 133_445_785),
    KrxSymbol("000100", "유한양행", "KOSPI200", "의약품", 128200, 80_206_000),
    KrxSymbol("128940", "한미약품", "KOSPI200", "의약품", 312500, 12_810_000),
    KrxSymbol("302440", "SK바이오사이언스", "KOSPI200", "의약품", 51300, 76_812_618),
    KrxSymbol("326030", "SK바이오팜", "KOSPI200", "의약품", 96800, 78_313_250),
    KrxSymbol("028050", "삼성E&A", "KOSPI200", "건설업", 21450, 196_000_000),
    KrxSymbol("000720", "현대건설", "KOSPI200", "건설업", 31250, 111_355_765),
    KrxSymbol("006360", "GS건설", "KOSPI200", "건설업", 17800, 85_581_490),
    KrxSymbol("047050", "포스코인터내셔널", "KOSPI200", "유통업", 48650, 175_922_788),
    KrxSymbol("078930", "GS", "KOSPI200", "기타금융", 38900, 92_919_609),
    KrxSymbol("001040", "CJ", "KOSPI200", "기타금융", 112800, 29_176_998),
    KrxSymbol("097950", "CJ제일제당", "KOSPI200", "음식료품", 287500, 15_054_186),
    KrxSymbol("271560", "오리온", "KOSPI200", "음식료품", 96300, 39_536_132),
    KrxSymbol("004370", "농심", "KOSPI200", "음식료품", 392000, 6_082_642),
    KrxSymbol("021240", "코웨이", "KOSPI200", "유통업", 62100, 73_799_619),
    KrxSymbol("035250", "강원랜드", "KOSPI200", "서비스업", 16380, 213_940_500),
    KrxSymbol("003490", "대한항공", "KOSPI200", "운수창고업", 22650, 368_220_661),
    KrxSymbol("011070", "LG이노텍", "KOSPI200", "전기·전자", 178000, 23_667_107),
    KrxSymbol("034220", "LG디스플레이", "KOSPI200", "전기·전자", 10120, 500_000_000),
    KrxSymbol("032640", "LG유플러스", "KOSPI200", "통신업", 10260, 436_611_361),
    KrxSymbol("010120", "LS ELECTRIC", "KOSPI200", "전기·전자", 189500, 30_000_000),
    KrxSymbol("006260", "LS", "KOSPI200", "기타금융", 112000, 32_200_000),
    KrxSymbol("267260", "HD현대일렉트릭", "KOSPI200", "전기·전자", 312000, 36_047_135),
    KrxSymbol("298040", "효성중공업", "KOSPI200", "전기·전자", 398000, 9_324_548),
    KrxSymbol("000990", "DB하이텍", "KOSPI200", "전기·전자", 41250, 44_398_000),
    KrxSymbol("450080", "에코프로머티", "KOSPI200", "화학", 78200, 68_228_668),
    KrxSymbol("066970", "엘앤에프", "KOSDAQ", "일반전기전자", 128500, 36_000_000),
    KrxSymbol("028300", "HLB", "KOSDAQ", "유통", 68300, 131_000_000),
    KrxSymbol("196170", "알테오젠", "KOSDAQ", "제약", 352000, 53_000_000),
    KrxSymbol("068760", "셀트리온제약", "KOSDAQ", "제약", 71200, 41_000_000),
    KrxSymbol("293490", "카카오게임즈", "KOSDAQ", "디지털컨텐츠", 18270, 82_000_000),
    KrxSymbol("263750", "펄어비스", "KOSDAQ", "디지털컨텐츠", 36450, 64_000_000),
    KrxSymbol("041510", "에스엠", "KOSDAQ", "오락·문화", 76800, 23_800_000),
    KrxSymbol("035900", "JYP Ent.", "KOSDAQ", "오락·문화", 58300, 35_500_000),
    KrxSymbol("122870", "와이지엔터테인먼트", "KOSDAQ", "오락·문화", 41200, 18_700_000),
    KrxSymbol("112040", "위메이드", "KOSDAQ", "디지털컨텐츠", 34150, 34_000_000),
    KrxSymbol("058470", "리노공업", "KOSDAQ", "반도체", 186700, 15_242_370),
    KrxSymbol("039030", "이오테크닉스", "KOSDAQ", "반도체", 162400, 12_300_000),
    KrxSymbol("240810", "원익IPS", "KOSDAQ", "반도체", 29850, 49_000_000),
    KrxSymbol("357780", "솔브레인", "KOSDAQ", "화학", 231500, 7_779_000),
    KrxSymbol("005290", "동진쎄미켐", "KOSDAQ", "화학", 27350, 51_400_000),
    KrxSymbol("036930", "주성엔지니어링", "KOSDAQ", "반도체", 30200, 48_000_000),
    KrxSymbol("145020", "휴젤", "KOSDAQ", "제약", 248500, 12_000_000),
    KrxSymbol("214150", "클래시스", "KOSDAQ", "의료·정밀기기", 48300, 65_500_000),
    KrxSymbol("141080", "리가켐바이오", "KOSDAQ", "제약", 98700, 36_000_000),
    KrxSymbol("095340", "ISC", "KOSDAQ", "반도체", 61800, 21_000_000),
    KrxSymbol("403870", "HPSP", "KOSDAQ", "반도체", 27400, 82_000_000),
    KrxSymbol("042700", "한미반도체", "KOSPI200", "기계", 98900, 96_000_000),
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

# search-info PRDT_TYPE_CD (상품유형코드) of the US exchanges (KIS EXCD → code).
US_PRDT_TYPE_CD: dict[str, str] = {"NAS": "512", "NYS": "513", "AMS": "529"}


def is_preferred(code: str) -> bool:
    """KRX short codes end in 0 for common stock, 5/7/9 for preferred classes."""
    return not code.endswith("0")


def krx_isin(code: str) -> str:
    """The KRX ISIN (표준코드) of a short code: KR7 + code (6th digit 1 for preferred) + 00 + check digit.

    005930 → KR7005930003, 005935 → KR7005931001 (ISO 6166 check digit: Luhn over letters as 10–35).
    """
    body = f"KR7{code[:5]}{'1' if is_preferred(code) else code[5]}00"
    digits = "".join(str(int(c, 36)) for c in body)
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return body + str((10 - total % 10) % 10)
