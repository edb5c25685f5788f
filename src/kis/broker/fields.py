"""Declarative field tables per KIS TR, in wire order (reference §4 and §6.4).

Realtime records are ``^``-joined values in exactly this order; a parser must accept records longer
than the table (KIS has appended fields twice), so tables name the documented prefix only.
"""

from __future__ import annotations

H0STCNT0: tuple[str, ...] = (
    "MKSC_SHRN_ISCD", "STCK_CNTG_HOUR", "STCK_PRPR", "PRDY_VRSS_SIGN", "PRDY_VRSS", "PRDY_CTRT",
    "WGHN_AVRG_STCK_PRC", "STCK_OPRC", "STCK_HGPR", "STCK_LWPR", "ASKP1", "BIDP1", "CNTG_VOL",
    "ACML_VOL", "ACML_TR_PBMN", "SELN_CNTG_CSNU", "SHNU_CNTG_CSNU", "NTBY_CNTG_CSNU", "CTTR",
    "SELN_CNTG_SMTN", "SHNU_CNTG_SMTN", "CCLD_DVSN", "SHNU_RATE", "PRDY_VOL_VRSS_ACML_VOL_RATE",
    "OPRC_HOUR", "OPRC_VRSS_PRPR_SIGN", "OPRC_VRSS_PRPR", "HGPR_HOUR", "HGPR_VRSS_PRPR_SIGN",
    "HGPR_VRSS_PRPR", "LWPR_HOUR", "LWPR_VRSS_PRPR_SIGN", "LWPR_VRSS_PRPR", "BSOP_DATE",
    "NEW_MKOP_CLS_CODE", "TRHT_YN", "ASKP_RSQN1", "BIDP_RSQN1", "TOTAL_ASKP_RSQN", "TOTAL_BIDP_RSQN",
    "VOL_TNRT", "PRDY_SMNS_HOUR_ACML_VOL", "PRDY_SMNS_HOUR_ACML_VOL_RATE", "HOUR_CLS_CODE",
    "MRKT_TRTM_CLS_CODE", "VI_STND_PRC",
)

H0STASP0: tuple[str, ...] = (
    "MKSC_SHRN_ISCD", "BSOP_HOUR", "HOUR_CLS_CODE",
    *(f"ASKP{i}" for i in range(1, 11)),
    *(f"BIDP{i}" for i in range(1, 11)),
    *(f"ASKP_RSQN{i}" for i in range(1, 11)),
    *(f"BIDP_RSQN{i}" for i in range(1, 11)),
    "TOTAL_ASKP_RSQN", "TOTAL_BIDP_RSQN", "OVTM_TOTAL_ASKP_RSQN", "OVTM_TOTAL_BIDP_RSQN", "ANTC_CNPR",
    "ANTC_CNQN", "ANTC_VOL", "ANTC_CNTG_VRSS", "ANTC_CNTG_VRSS_SIGN", "ANTC_CNTG_PRDY_CTRT", "ACML_VOL",
    "TOTAL_ASKP_RSQN_ICDC", "TOTAL_BIDP_RSQN_ICDC", "OVTM_TOTAL_ASKP_ICDC", "OVTM_TOTAL_BIDP_ICDC",
    "STCK_DEAL_CLS_CODE",
)

HDFSCNT0: tuple[str, ...] = (
    "RSYM", "SYMB", "ZDIV", "TYMD", "XYMD", "XHMS", "KYMD", "KHMS", "OPEN", "HIGH", "LOW", "LAST",
    "SIGN", "DIFF", "RATE", "PBID", "PASK", "VBID", "VASK", "EVOL", "TVOL", "TAMT", "BIVL", "ASVL",
    "STRN", "MTYP",
)

# Execution notice, current 26-field layout (since 2025-07-10).
H0STCNI0: tuple[str, ...] = (
    "CUST_ID", "ACNT_NO", "ODER_NO", "OODER_NO", "SELN_BYOV_CLS", "RCTF_CLS", "ODER_KIND", "ODER_COND",
    "STCK_SHRN_ISCD", "CNTG_QTY", "CNTG_UNPR", "STCK_CNTG_HOUR", "RFUS_YN", "CNTG_YN", "ACPT_YN",
    "BRNC_NO", "ODER_QTY", "ACNT_NAME", "ORD_COND_PRC", "ORD_EXG_GB", "POPUP_YN", "FILLER", "CRDT_CLS",
    "CRDT_LOAN_DATE", "CNTG_ISNM40", "ODER_PRC",
)

# The 23-field layout used before 2025-07-10 (python-kis still expects it).
H0STCNI0_LEGACY: tuple[str, ...] = (
    *H0STCNI0[:18], "CNTG_ISNM", "CRDT_CLS", "CRDT_LOAN_DATE", "CNTG_ISNM40", "ODER_PRC",
)

REALTIME_TABLES: dict[str, tuple[str, ...]] = {
    "H0STCNT0": H0STCNT0,
    "H0STASP0": H0STASP0,
    "HDFSCNT0": HDFSCNT0,
    "H0STCNI0": H0STCNI0,
    "H0STCNI9": H0STCNI0,
}

INQUIRE_PRICE_OUTPUT: tuple[str, ...] = (
    "iscd_stat_cls_code", "marg_rate", "rprs_mrkt_kor_name", "new_hgpr_lwpr_cls_code", "bstp_kor_isnm",
    "temp_stop_yn", "oprc_rang_cont_yn", "clpr_rang_cont_yn", "crdt_able_yn", "grmn_rate_cls_code",
    "elw_pblc_yn", "stck_prpr", "prdy_vrss", "prdy_vrss_sign", "prdy_ctrt", "acml_tr_pbmn", "acml_vol",
    "prdy_vrss_vol_rate", "stck_oprc", "stck_hgpr", "stck_lwpr", "stck_mxpr", "stck_llam", "stck_sdpr",
    "wghn_avrg_stck_prc", "hts_frgn_ehrt", "frgn_ntby_qty", "pgtr_ntby_qty", "pvt_scnd_dmrs_prc",
    "pvt_frst_dmrs_prc", "pvt_pont_val", "pvt_frst_dmsp_prc", "pvt_scnd_dmsp_prc", "dmrs_val",
    "dmsp_val", "cpfn", "rstc_wdth_prc", "stck_fcam", "stck_sspr", "aspr_unit", "hts_deal_qty_unit_val",
    "lstn_stcn", "hts_avls", "per", "pbr", "stac_month", "vol_tnrt", "eps", "bps", "d250_hgpr",
    "d250_hgpr_date", "d250_hgpr_vrss_prpr_rate", "d250_lwpr", "d250_lwpr_date",
    "d250_lwpr_vrss_prpr_rate", "stck_dryy_hgpr", "dryy_hgpr_vrss_prpr_rate", "dryy_hgpr_date",
    "stck_dryy_lwpr", "dryy_lwpr_vrss_prpr_rate", "dryy_lwpr_date", "w52_hgpr", "w52_hgpr_vrss_prpr_ctrt",
    "w52_hgpr_date", "w52_lwpr", "w52_lwpr_vrss_prpr_ctrt", "w52_lwpr_date", "whol_loan_rmnd_rate",
    "ssts_yn", "stck_shrn_iscd", "fcam_cnnm", "cpfn_cnnm", "apprch_rate", "frgn_hldn_qty", "vi_cls_code",
    "ovtm_vi_cls_code", "last_ssts_cntg_qty", "invt_caful_yn", "mrkt_warn_cls_code", "short_over_yn",
    "sltr_yn", "mang_issu_cls_code",
)

BALANCE_OUTPUT1: tuple[str, ...] = (
    "pdno", "prdt_name", "trad_dvsn_name", "bfdy_buy_qty", "bfdy_sll_qty", "thdt_buyqty", "thdt_sll_qty",
    "hldg_qty", "ord_psbl_qty", "pchs_avg_pric", "pchs_amt", "prpr", "evlu_amt", "evlu_pfls_amt",
    "evlu_pfls_rt", "evlu_erng_rt", "loan_dt", "loan_amt", "stln_slng_chgs", "expd_dt", "fltt_rt",
    "bfdy_cprs_icdc", "item_mgna_rt_name", "grta_rt_name", "sbst_pric", "stck_loan_unpr",
)

BALANCE_OUTPUT2: tuple[str, ...] = (
    "dnca_tot_amt", "nxdy_excc_amt", "prvs_rcdl_excc_amt", "cma_evlu_amt", "bfdy_buy_amt", "thdt_buy_amt",
    "nxdy_auto_rdpt_amt", "bfdy_sll_amt", "thdt_sll_amt", "d2_auto_rdpt_amt", "bfdy_tlex_amt",
    "thdt_tlex_amt", "tot_loan_amt", "scts_evlu_amt", "tot_evlu_amt", "nass_amt", "fncg_gld_auto_rdpt_yn",
    "pchs_amt_smtl_amt", "evlu_amt_smtl_amt", "evlu_pfls_smtl_amt", "tot_stln_slng_chgs",
    "bfdy_tot_asst_evlu_amt", "asst_icdc_amt", "asst_icdc_erng_rt",
)

DAILY_CCLD_OUTPUT1: tuple[str, ...] = (
    "ord_dt", "ord_gno_brno", "odno", "orgn_odno", "ord_dvsn_name", "sll_buy_dvsn_cd",
    "sll_buy_dvsn_cd_name", "pdno", "prdt_name", "ord_qty", "ord_unpr", "ord_tmd", "tot_ccld_qty",
    "avg_prvs", "cncl_yn", "tot_ccld_amt", "loan_dt", "ordr_empno", "ord_dvsn_cd", "cnc_cfrm_qty",
    "rmn_qty", "rjct_qty", "ccld_cndt_name", "inqr_ip_addr", "cpbc_ordp_ord_rcit_dvsn_cd",
    "cpbc_ordp_infm_mthd_dvsn_cd", "infm_tmd", "ctac_tlno", "prdt_type_cd", "excg_dvsn_cd",
    "cpbc_ordp_mtrl_dvsn_cd", "ord_orgno", "rsvn_ord_end_dt", "excg_id_dvsn_cd", "stpm_cndt_pric",
    "stpm_efct_occr_dtmd",
)

DAILY_CCLD_OUTPUT2: tuple[str, ...] = (
    "tot_ord_qty", "tot_ccld_qty", "tot_ccld_amt", "prsm_tlex_smtl", "pchs_avg_pric",
)

PSBL_ORDER_OUTPUT: tuple[str, ...] = (
    "ord_psbl_cash", "ord_psbl_sbst", "ruse_psbl_amt", "fund_rpch_chgs", "psbl_qty_calc_unpr",
    "nrcvb_buy_amt", "nrcvb_buy_qty", "max_buy_amt", "max_buy_qty", "cma_evlu_amt",
    "ovrs_re_use_amt_wcrc", "ord_psbl_frcr_amt_wcrc",
)

OVERSEAS_PRICE_OUTPUT: tuple[str, ...] = (
    "rsym", "zdiv", "base", "pvol", "last", "sign", "diff", "rate", "tvol", "tamt", "ordy",
)

HOLIDAY_OUTPUT: tuple[str, ...] = ("bass_dt", "wday_dvsn_cd", "bzdy_yn", "tr_day_yn", "opnd_yn", "sttl_day_yn")

# inquire-psbl-rvsecncl (TTTC0084R): output is an array of the account's modifiable/cancellable orders.
PSBL_RVSECNCL_OUTPUT: tuple[str, ...] = (
    "ord_gno_brno", "odno", "orgn_odno", "ord_dvsn_name", "pdno", "prdt_name", "rvse_cncl_dvsn_name",
    "ord_qty", "ord_unpr", "ord_tmd", "tot_ccld_qty", "tot_ccld_amt", "psbl_qty", "sll_buy_dvsn_cd",
    "ord_dvsn_cd", "mgco_aptm_odno", "excg_dvsn_cd", "excg_id_dvsn_cd", "excg_id_dvsn_name",
    "stpm_cndt_pric", "stpm_efct_occr_yn",
)

# inquire-asking-price-exp-ccn (FHKST01010200): output1 the 10-level book, output2 the expected execution.
ASKING_PRICE_OUTPUT1: tuple[str, ...] = (
    "aspr_acpt_hour",
    *(f"askp{i}" for i in range(1, 11)),
    *(f"bidp{i}" for i in range(1, 11)),
    *(f"askp_rsqn{i}" for i in range(1, 11)),
    *(f"bidp_rsqn{i}" for i in range(1, 11)),
    *(f"askp_rsqn_icdc{i}" for i in range(1, 11)),
    *(f"bidp_rsqn_icdc{i}" for i in range(1, 11)),
    "total_askp_rsqn", "total_bidp_rsqn", "total_askp_rsqn_icdc", "total_bidp_rsqn_icdc",
    "ovtm_total_askp_icdc", "ovtm_total_bidp_icdc", "ovtm_total_askp_rsqn", "ovtm_total_bidp_rsqn",
    "ntby_aspr_rsqn", "new_mkop_cls_code",
)

ASKING_PRICE_OUTPUT2: tuple[str, ...] = (
    "antc_mkop_cls_code", "stck_prpr", "stck_oprc", "stck_hgpr", "stck_lwpr", "stck_sdpr", "antc_cnpr",
    "antc_cntg_vrss_sign", "antc_cntg_vrss", "antc_cntg_prdy_ctrt", "antc_vol", "stck_shrn_iscd",
    "vi_cls_code",
)

# search-info (CTPF1604R, 상품기본조회).
SEARCH_INFO_OUTPUT: tuple[str, ...] = (
    "pdno", "prdt_type_cd", "prdt_name", "prdt_name120", "prdt_abrv_name", "prdt_eng_name",
    "prdt_eng_name120", "prdt_eng_abrv_name", "std_pdno", "shtn_pdno", "prdt_sale_stat_cd",
    "prdt_risk_grad_cd", "prdt_clsf_cd", "prdt_clsf_name", "sale_strt_dt", "sale_end_dt",
    "wrap_asst_type_cd", "ivst_prdt_type_cd", "ivst_prdt_type_cd_name", "frst_erlm_dt",
)

# search-stock-info (CTPF1002R, 주식기본조회); the last two (NXT) were added in 2025.
SEARCH_STOCK_INFO_OUTPUT: tuple[str, ...] = (
    "pdno", "prdt_type_cd", "mket_id_cd", "scty_grp_id_cd", "excg_dvsn_cd", "setl_mmdd", "lstg_stqt",
    "lstg_cptl_amt", "cpta", "papr", "issu_pric", "kospi200_item_yn", "scts_mket_lstg_dt",
    "scts_mket_lstg_abol_dt", "kosdaq_mket_lstg_dt", "kosdaq_mket_lstg_abol_dt", "frbd_mket_lstg_dt",
    "frbd_mket_lstg_abol_dt", "reits_kind_cd", "etf_dvsn_cd", "oilf_fund_yn", "idx_bztp_lcls_cd",
    "idx_bztp_mcls_cd", "idx_bztp_scls_cd", "stck_kind_cd", "mfnd_opng_dt", "mfnd_end_dt",
    "dpsi_erlm_cncl_dt", "etf_cu_qty", "prdt_name", "prdt_name120", "prdt_abrv_name", "std_pdno",
    "prdt_eng_name", "prdt_eng_name120", "prdt_eng_abrv_name", "dpsi_aptm_erlm_yn", "etf_txtn_type_cd",
    "etf_type_cd", "lstg_abol_dt", "nwst_odst_dvsn_cd", "sbst_pric", "thco_sbst_pric",
    "thco_sbst_pric_chng_dt", "tr_stop_yn", "admn_item_yn", "thdt_clpr", "bfdy_clpr", "clpr_chng_dt",
    "std_idst_clsf_cd", "std_idst_clsf_cd_name", "idx_bztp_lcls_cd_name", "idx_bztp_mcls_cd_name",
    "idx_bztp_scls_cd_name", "ocr_no", "crfd_item_yn", "elec_scty_yn", "issu_istt_cd",
    "etf_chas_erng_rt_dbnb", "etf_etn_ivst_heed_item_yn", "stln_int_rt_dvsn_cd", "frnr_psnl_lmt_rt",
    "lstg_rqsr_issu_istt_cd", "lstg_rqsr_item_cd", "trst_istt_issu_istt_cd", "cptt_trad_tr_psbl_yn",
    "nxt_tr_stop_yn",
)

# overseas price-detail (HHDFS76200200, 해외주식 현재가상세).
OVERSEAS_PRICE_DETAIL_OUTPUT: tuple[str, ...] = (
    "rsym", "pvol", "open", "high", "low", "last", "base", "tomv", "pamt", "uplp", "dnlp", "h52p", "h52d",
    "l52p", "l52d", "perx", "pbrx", "epsx", "bpsx", "shar", "mcap", "curr", "zdiv", "vnit", "t_xprc",
    "t_xdif", "t_xrat", "p_xprc", "p_xdif", "p_xrat", "t_rate", "p_rate", "t_xsgn", "p_xsng", "e_ordyn",
    "e_hogau", "e_icod", "e_parp", "tvol", "tamt", "etyp_nm",
)
