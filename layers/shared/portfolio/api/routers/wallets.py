"""Wallets: link an address, list the linked ones with how each chain's sync went, unlink, sync now."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from portfolio.api.dependencies import pricing_deadline, wallet_links
from portfolio.api.errors import TooManyRequests
from portfolio.api.openapi_responses import BODY_ERRORS, READ_ERRORS, WRITE_ERRORS, answers
from portfolio.api.responses import error_response
from portfolio.api.routers.common import UserId, write_response
from portfolio.api.schemas import WALLET_LINK_EXAMPLES, WalletChainView, WalletLink, WalletList, WalletView
from portfolio.domain.transactions import WALLET_ID_PATTERN
from portfolio.domain.wallets import Wallet
from portfolio.services.wallet_links import SyncRateLimited, display_address

router = Router()

WalletId = Annotated[str, Path(alias="walletId", pattern=WALLET_ID_PATTERN)]


def _view(wallet: Wallet) -> WalletView:
    return WalletView(
        wallet_id=wallet.wallet_id,
        address=display_address(wallet),
        label=wallet.label,
        chains=[
            WalletChainView(
                chain=sync.chain,
                status=sync.status,
                block_number=sync.block_number,
                last_synced_at=sync.last_synced_at,
                error=sync.error,
            )
            for sync in wallet.chains
        ],
        linked_at=wallet.linked_at,
    )


@router.post(
    "/portfolios/<userId>/wallets",
    operation_id="linkWallet",
    summary="Link a wallet address; the refresh then reads its balances from the chains",
    description=(
        "201 when the address is newly linked, 200 when it already was (same walletId; chains named are "
        "added, a label replaces the old one). An EVM address defaults to every EVM chain with a node "
        "configured; a base58 address is Solana. At most 20 wallets per portfolio (422 portfolio_limit)."
    ),
    tags=["wallets"],
    responses=answers(
        {
            HTTPStatus.CREATED: (WalletView, "Linked; the next refresh syncs it"),
            HTTPStatus.OK: (WalletView, "Already linked"),
        },
        errors=(*WRITE_ERRORS, *BODY_ERRORS),
    ),
)
def link_wallet(
    user_id: UserId, link: Annotated[WalletLink, Body(openapi_examples=WALLET_LINK_EXAMPLES)]
) -> Response[Any]:
    outcome = wallet_links().link(user_id, link.address, link.chains, link.label)
    status = HTTPStatus.CREATED if outcome.created else HTTPStatus.OK
    return write_response(status, _view(outcome.wallet).model_dump_json(by_alias=True))


@router.get(
    "/portfolios/<userId>/wallets",
    operation_id="listWallets",
    summary="Linked wallets, and how the last sync of each chain went",
    tags=["wallets"],
    responses=answers({HTTPStatus.OK: (WalletList, "Every linked wallet")}),
)
def list_wallets(user_id: UserId) -> Response[Any]:
    body = WalletList(wallets=[_view(wallet) for wallet in wallet_links().wallets(user_id)])
    return write_response(HTTPStatus.OK, body.model_dump_json(by_alias=True))


@router.delete(
    "/portfolios/<userId>/wallets/<walletId>",
    operation_id="unlinkWallet",
    summary="Unlink a wallet; what it brought (its chain transactions and those tagged with it) is removed",
    description=(
        "422 insufficient_holding when a transaction not tagged with the wallet sells or moves coins only "
        "this wallet brought: delete or tag that transaction first."
    ),
    tags=["wallets"],
    responses={
        **answers({}, errors=(*WRITE_ERRORS, HTTPStatus.NOT_FOUND)),
        HTTPStatus.NO_CONTENT: {"description": "Unlinked"},
    },
)
def unlink_wallet(user_id: UserId, wallet_id: WalletId) -> Response[Any]:
    wallet_links().unlink(user_id, wallet_id)
    return Response(status_code=HTTPStatus.NO_CONTENT, headers={"Cache-Control": "no-store"})


@router.post(
    "/portfolios/<userId>/wallets/<walletId>/sync",
    operation_id="syncWallet",
    summary="Sync one wallet now instead of at the next refresh (once a minute per portfolio)",
    tags=["wallets"],
    responses=answers(
        {HTTPStatus.OK: (WalletView, "Synced; chains show how it went")},
        # A chain that cannot be read or a change that cannot be recorded is reported on the wallet's chains.
        errors=(*READ_ERRORS, HTTPStatus.NOT_FOUND),
    ),
)
def sync_wallet(user_id: UserId, wallet_id: WalletId) -> Response[Any]:
    try:
        wallet = wallet_links().sync_now(user_id, wallet_id, deadline=pricing_deadline(router.lambda_context))
    except SyncRateLimited as limited:
        response = error_response(TooManyRequests(str(limited)))
        response.headers["Retry-After"] = str(limited.retry_after_s)
        return response
    return write_response(HTTPStatus.OK, _view(wallet).model_dump_json(by_alias=True))
