"""`python -m local_stack.token alice [--admin]`: print a bearer token the local stack accepts."""

from __future__ import annotations

import argparse
import sys

from local_stack.config import load_settings
from local_stack.jwt_auth import ADMIN_SCOPE, DEFAULT_TOKEN_TTL_S, JwtAuthorizer, load_or_create_secret


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack.token", description=__doc__)
    parser.add_argument("user_id", help="the token's subject: the only portfolio it may read and write")
    parser.add_argument("--admin", action="store_true", help=f"add the {ADMIN_SCOPE} scope (may read any portfolio)")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TOKEN_TTL_S, help="lifetime in seconds (default 12 h)")
    arguments = parser.parse_args(argv)
    if not arguments.user_id.strip():
        parser.error("user_id must not be empty")

    settings = load_settings()
    secret = load_or_create_secret(settings.resolved_data_dir, settings.jwt_secret_value)
    scopes = [ADMIN_SCOPE] if arguments.admin else []
    print(JwtAuthorizer(secret).issue(arguments.user_id, scopes=scopes, ttl_s=arguments.ttl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
