"""Configured accounts: ``A1`` and its own number name KIS_ACCOUNT_NO; KIS_ACCOUNTS adds aliases."""

from __future__ import annotations

from dataclasses import dataclass

from kis.broker.orders import AccountRef
from kis.gateway.errors import ApiError
from kis.logs import mask_account


@dataclass(frozen=True)
class Account:
    alias: str
    ref: AccountRef

    @property
    def number(self) -> str:
        return self.ref.number

    @property
    def masked(self) -> str:
        return mask_account(self.ref.number)


class AccountRegistry:
    def __init__(self, primary: str | None, extra: str = "") -> None:
        self._by_name: dict[str, Account] = {}
        self.errors: list[str] = []
        if primary:
            self._add("A1", primary)
        for item in (x.strip() for x in extra.split(",") if x.strip()):
            alias, sep, number = item.partition("=")
            if not sep:
                self.errors.append(f"KIS_ACCOUNTS entry {alias!r} is not ALIAS=NUMBER")
                continue
            self._add(alias.strip(), number.strip())

    def _add(self, alias: str, number: str) -> None:
        try:
            acct = Account(alias, AccountRef.parse(number))
        except ValueError:
            self.errors.append(f"account {alias!r} is not 8+2 digits")
            return
        self._by_name[alias] = acct
        self._by_name[acct.number] = acct
        self._by_name[acct.number.replace("-", "")] = acct

    def resolve(self, account_id: str) -> Account:
        acct = self._by_name.get(str(account_id).strip())
        if acct is None:
            raise ApiError(404, "ACCOUNT_NOT_FOUND", "no configured account answers to that account_id")
        return acct

    def all(self) -> list[Account]:
        return list({a.number: a for a in self._by_name.values()}.values())
