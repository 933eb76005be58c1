"""Demo wallets (DEMO=1): holdings put on the local nodes, then linked to demo users through the API.

- Ethereum, on the local anvil only (never on a node from RPC_URL_ETHEREUM: the demo changes the
  chain): a DemoToken (ERC-20 "Demo Token", DEMO, 18 decimals) is deployed, and a fixed address gets
  3 ETH (anvil_setBalance) and 1,500 DEMO (minted, so a Transfer log shows where it came from). The
  offline prices (when they run) quote DEMO at $2.50, so it is valued like any listed token. Linked
  to alice.
- Solana, on the local Solana fake only: a fixed address holding 12.5 SOL and 250 USDC (an SPL token
  account of USDC's mainnet mint). Linked to bob.

Linking goes through the gateway and the API function (POST /portfolios/{userId}/wallets), as a
client's would; the refresh that follows reads the chains and records what each wallet holds as
transactions of source "chain". Linking the same address again is the same wallet (200, not 201).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal

from local_stack.coins_api import CoinsApiServer
from local_stack.demo import Dispatch, post_as
from local_stack.evm_node import AnvilNode
from local_stack.jwt_auth import JwtAuthorizer
from local_stack.solana_rpc import SolanaRpcServer, pubkey_from_seed

EVM_ZERO = "0x0000000000000000000000000000000000000000"
# A fixed address nobody holds a key for (anvil impersonates it to send from it).
DEMO_EVM_ADDRESS = "0x" + hashlib.sha256(b"local-stack demo wallet").hexdigest()[:40]
DEMO_EVM_USER = "alice"
DEMO_ETH = Decimal("3")
DEMO_ERC20_NAME = "Demo Token"
DEMO_ERC20_SYMBOL = "DEMO"
DEMO_ERC20_DECIMALS = 18
DEMO_ERC20_AMOUNT = Decimal("1500")
DEMO_ERC20_PRICE_USD = Decimal("2.50")

DEMO_SOLANA_ADDRESS = pubkey_from_seed("local-stack demo wallet")
DEMO_SOLANA_USER = "bob"
DEMO_SOL = Decimal("12.5")
SOL_MINT = "So11111111111111111111111111111111111111112"
USDC_SOLANA_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
USDC_DECIMALS = 6
DEMO_SOLANA_USDC = Decimal("250")

DEMO_LABEL = "Demo wallet"


@dataclass(frozen=True)
class DemoWallet:
    user_id: str
    chain: str
    address: str
    holdings: dict[str, tuple[str, Decimal]]  # token address -> (symbol, amount)

    def describe(self) -> str:
        held = ", ".join(f"{amount.normalize():f} {symbol}" for symbol, amount in self.holdings.values())
        return f"{self.chain} {self.address}: {held}"


@dataclass(frozen=True)
class LinkResult:
    wallet: DemoWallet
    status: int
    wallet_id: str | None = None
    problem: str | None = None


def base_units(amount: Decimal, decimals: int) -> int:
    units = amount.scaleb(decimals)
    if units != units.to_integral_value():
        raise ValueError(f"{amount} has more than {decimals} decimals")
    return int(units)


def seed_evm_wallet(node: AnvilNode, prices: CoinsApiServer | None) -> DemoWallet:
    """ETH and a freshly deployed DEMO token in the demo address; DEMO priced when the offline prices run."""
    node.set_native_balance(DEMO_EVM_ADDRESS, base_units(DEMO_ETH, 18))
    token = node.deploy_token(DEMO_ERC20_NAME, DEMO_ERC20_SYMBOL, DEMO_ERC20_DECIMALS)
    node.mint(token, DEMO_EVM_ADDRESS, base_units(DEMO_ERC20_AMOUNT, DEMO_ERC20_DECIMALS))
    if prices is not None:
        prices.set_price(
            f"ethereum:{token}", DEMO_ERC20_PRICE_USD, symbol=DEMO_ERC20_SYMBOL, decimals=DEMO_ERC20_DECIMALS
        )
    return DemoWallet(
        user_id=DEMO_EVM_USER,
        chain="ethereum",
        address=DEMO_EVM_ADDRESS,
        holdings={EVM_ZERO: ("ETH", DEMO_ETH), token: (DEMO_ERC20_SYMBOL, DEMO_ERC20_AMOUNT)},
    )


def seed_solana_wallet(node: SolanaRpcServer) -> DemoWallet:
    node.set_lamports(DEMO_SOLANA_ADDRESS, base_units(DEMO_SOL, 9))
    node.add_token_account(
        DEMO_SOLANA_ADDRESS, USDC_SOLANA_MINT, base_units(DEMO_SOLANA_USDC, USDC_DECIMALS), USDC_DECIMALS
    )
    return DemoWallet(
        user_id=DEMO_SOLANA_USER,
        chain="solana",
        address=DEMO_SOLANA_ADDRESS,
        holdings={SOL_MINT: ("SOL", DEMO_SOL), USDC_SOLANA_MINT: ("USDC", DEMO_SOLANA_USDC)},
    )


def link_wallets(dispatch: Dispatch, authorizer: JwtAuthorizer, wallets: list[DemoWallet]) -> list[LinkResult]:
    """POST /portfolios/{userId}/wallets for each, with the user's own token; what each answered."""
    results = []
    for wallet in wallets:
        body = {"address": wallet.address, "chains": [wallet.chain], "label": DEMO_LABEL}
        response = post_as(dispatch, authorizer, wallet.user_id, f"/portfolios/{wallet.user_id}/wallets", body)
        if response.status in (200, 201):
            wallet_id = json.loads(response.body).get("walletId")
            results.append(LinkResult(wallet, response.status, wallet_id=wallet_id))
        else:
            results.append(LinkResult(wallet, response.status, problem=response.body.decode(errors="replace")[:500]))
    return results
