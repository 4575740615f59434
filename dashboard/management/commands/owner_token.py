from core.commands import ApplicationCommand
from dashboard.models import OwnerToken
from dashboard.owner_api.tokens import token_create, token_revoke


class Command(ApplicationCommand):
    help = (
        "Owner API tokens: 'create --user U [--study SLUG ...] [--name N]' prints a new token's secret (once; only "
        "its SHA-256 is stored), 'revoke ID' makes a token answer 401 from now on, 'list' shows every token."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="make a token and print its secret once")
        create.add_argument("--user", required=True, help="the username the token acts for")
        create.add_argument(
            "--study", action="append", default=[], help="scope: a study slug the user owns (repeat for more)"
        )
        create.add_argument("--name", default="", help="what the token is for")
        revoke = actions.add_parser("revoke", help="revoke a token by id")
        revoke.add_argument("token_id", type=int)
        actions.add_parser("list", help="list the tokens")

    def handle(self, *args, action, **options):
        if action == "create":
            made = token_create(username=options["user"], name=options["name"], study_slugs=options["study"])
            scope = ", ".join(options["study"]) or "every study the user owns"
            self.stdout.write(f"token {made.token.pk} for {options['user']} (scope: {scope})")
            self.stdout.write(f"secret (shown only now): {made.secret}")
            self.stdout.write("send it as: Authorization: Token <secret>")
        elif action == "revoke":
            token = token_revoke(token_id=options["token_id"])
            self.stdout.write(f"revoked token {token.pk} of {token.user}")
        else:
            for token in OwnerToken.objects.select_related("user").prefetch_related("studies"):
                scope = ",".join(study.slug for study in token.studies.all()) or "*"
                state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked else "active"
                used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
                self.stdout.write(f"{token.pk}\t{token.user}\t{token.name or '-'}\tscope={scope}\t{state}\tused={used}")
