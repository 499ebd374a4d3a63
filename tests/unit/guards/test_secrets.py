import random
import string
import uuid

import pytest

from seekgate.guards.secrets import SECRET_TYPES, find_secrets, has_secret_trigger
from seekgate.guards.types import Action, Kind

# Every credential here is generated at run time, so this file holds nothing a scanner would flag.
ALNUM = string.ascii_letters + string.digits
UPPER = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
URLSAFE = ALNUM + "-_"
B64 = ALNUM + "+/"
BEGIN = "-----" + "BEGIN "  # split, so this file holds no key block a scanner would flag
UUID = str(uuid.UUID(int=random.Random(9).getrandbits(128), version=4))


def _r(n: int, alphabet: str = ALNUM, seed: int = 0) -> str:
    rng = random.Random(f"{seed}-{n}-{alphabet}")
    return "".join(rng.choice(alphabet) for _ in range(n))


def _found(text: str) -> list[tuple[str, str]]:
    return [(text[f.start : f.end], f.type) for f in find_secrets(text)]


TOKENS = [
    ("aws_access_key_id", "AK" + "IA" + _r(16, UPPER)),
    ("aws_access_key_id", "AS" + "IA" + _r(16, UPPER, 1)),
    ("gcp_api_key", "AI" + "za" + _r(35, URLSAFE)),
    ("github_token", "gh" + "p_" + _r(36)),
    ("github_token", "gh" + "s_" + _r(36, seed=1)),
    ("github_token", "github" + "_pat_" + _r(22) + "_" + _r(59)),
    ("gitlab_token", "gl" + "pat-" + _r(20)),
    ("bitbucket_app_password", "AT" + "BB" + _r(32)),
    ("slack_token", "xo" + "xb-" + _r(11, "0123456789") + "-" + _r(13, "0123456789") + "-" + _r(24)),
    ("slack_token", "xa" + "pp-1-A" + _r(10, UPPER) + "-" + _r(13, "0123456789") + "-" + _r(64, HEX)),
    ("slack_webhook", "https://hooks.sl" + "ack.com/services/T" + _r(8, UPPER) + "/B" + _r(8, UPPER) + "/" + _r(24)),
    ("discord_webhook", "https://discord.com/api/web" + "hooks/" + _r(18, "0123456789") + "/" + _r(68, URLSAFE)),
    ("discord_bot_token", "M" + _r(23) + "." + _r(6) + "." + _r(27)),
    ("telegram_bot_token", _r(10, "123456789") + ":AA" + _r(33, URLSAFE)),
    ("stripe_key", "sk" + "_live_" + _r(24)),
    ("stripe_key", "rk" + "_live_" + _r(24, seed=1)),
    ("stripe_key", "sk" + "_test_" + _r(24, seed=2)),
    ("stripe_webhook_secret", "wh" + "sec_" + _r(32)),
    ("square_token", "sq0" + "atp-" + _r(22, URLSAFE)),
    ("braintree_token", "access_token$production$" + _r(16, "abcdefghijklmnopqrstuvwxyz0123456789") + "$" + _r(32, HEX)),
    ("sendgrid_api_key", "SG." + _r(22, URLSAFE) + "." + _r(43, URLSAFE)),
    ("mailgun_api_key", "key-" + _r(32, HEX)),
    ("openai_api_key", "sk-" + "proj-" + _r(48, URLSAFE)),
    ("openai_api_key", "sk-" + _r(48)),
    ("anthropic_api_key", "sk-" + "ant-api03-" + _r(93, URLSAFE)),
    ("huggingface_token", "hf" + "_" + _r(34)),
    ("groq_api_key", "gs" + "k_" + _r(52)),
    ("replicate_api_token", "r8" + "_" + _r(37)),
    ("npm_token", "np" + "m_" + _r(36)),
    ("pypi_token", "pypi-" + "AgEIcHlwaS5vcmc" + _r(60, URLSAFE)),
    ("rubygems_api_key", "rubygems" + "_" + _r(48, HEX)),
    ("nuget_api_key", "oy2" + _r(43, "abcdefghijklmnopqrstuvwxyz0123456789")),
    ("docker_hub_token", "dckr" + "_pat_" + _r(27, URLSAFE)),
    ("shopify_token", "shp" + "at_" + _r(32, HEX)),
    ("atlassian_api_token", "ATA" + "TT3" + _r(180, URLSAFE)),
    ("digitalocean_token", "dop" + "_v1_" + _r(64, HEX)),
    ("heroku_api_key", "HRKU-" + _r(60, URLSAFE)),
    ("new_relic_key", "NRAK-" + _r(27, UPPER)),
    ("sentry_token", "sntryu" + "_" + _r(64, HEX)),
    ("linear_api_key", "lin" + "_api_" + _r(40)),
    ("notion_token", "nt" + "n_" + _r(46)),
    ("notion_token", "secret" + "_" + _r(43)),
    ("vault_token", "hv" + "s." + _r(90, URLSAFE)),
    ("doppler_token", "dp" + ".pt." + _r(43)),
    ("postman_api_key", "PMAK-" + _r(24, HEX) + "-" + _r(34, HEX)),
    ("age_secret_key", "AGE-SECRET-" + "KEY-1" + _r(58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L")),
    ("jwt", "ey" + "J" + _r(30, URLSAFE) + ".eyJ" + _r(60, URLSAFE) + "." + _r(43, URLSAFE)),
]


def test_every_type_is_declared_and_covered_by_a_test():
    assert len(SECRET_TYPES) == len(set(SECRET_TYPES))
    tested = {t for t, _ in TOKENS} | {"azure_storage_key", "sentry_dsn", "private_key", "url_credentials"}
    tested |= {"aws_secret_access_key", "twilio_api_key", "twilio_auth_token", "heroku_api_key", "datadog_api_key"}
    tested |= {"cohere_api_key", "mistral_api_key", "dotenv_secret", "password_assignment", "generic_secret"}
    assert set(SECRET_TYPES) == tested


@pytest.mark.parametrize(("type_", "token"), TOKENS, ids=[f"{t}-{i}" for i, (t, _) in enumerate(TOKENS)])
def test_a_vendor_token_is_found_with_its_exact_span(type_: str, token: str):
    for text in (f"use {token} now", f'cfg = {{"k": "{token}"}}', f"(`{token}`)"):
        assert _found(text) == [(token, type_)], text
        assert all(f.kind is Kind.SECRET and f.action is Action.FLAG for f in find_secrets(text))


@pytest.mark.parametrize(("type_", "token"), TOKENS[:8], ids=[t for t, _ in TOKENS[:8]])
def test_a_token_inside_a_longer_word_or_base64_run_is_not_a_token(type_: str, token: str):
    assert _found(f"x{token}") == []
    assert _found(f"data:image/png;base64,{_r(200, B64, 5)}{token}{_r(40, B64, 6)}==") == []


def test_documented_example_keys_and_repeated_characters_are_not_secrets():
    text = (
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n"
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
        f"token = {'gh' + 'p_' + 'x' * 36}\n"
        f"key: {'sk' + '_live_' + '0123456789abcdefghijklmn'}\n"
    )
    assert _found(text) == []


def test_connection_string_and_dsn_values_are_found_inside_their_markers():
    key = _r(86, B64) + "=="
    conn = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={key};EndpointSuffix=core.windows.net"
    assert _found(conn) == [(key, "azure_storage_key")]
    public = _r(32, HEX)
    assert _found(f"SENTRY_DSN: https://{public}@o4507.ingest.us.sentry.io/4508") == [(public, "sentry_dsn")]


# --- private keys ----------------------------------------------------------------------------


def _pem(label: str, lines: int = 6, sep: str = "\n") -> str:
    body = sep.join(_r(64, B64, i) for i in range(lines))
    return f"{BEGIN}{label}-----{sep}{body}{sep}{_r(20, B64)}=={sep}-----END {label}-----"


@pytest.mark.parametrize(
    "label",
    ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "PGP PRIVATE KEY BLOCK"],
)
def test_a_whole_private_key_block_is_one_finding(label: str):
    block = _pem(label)
    assert _found(f"key file:\n{block}\nthanks") == [(block, "private_key")]


def test_an_encrypted_pem_with_headers_and_a_json_escaped_key_are_whole_blocks():
    pem = _pem("RSA PRIVATE KEY").replace("-----\n", "-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,A1B2\n\n", 1)
    assert _found(pem) == [(pem, "private_key")]
    escaped = _pem("PRIVATE KEY", sep="\\n") + "\\n"
    sa = f'{{"type": "service_account", "private_key_id": "{_r(40, HEX)}", "private_key": "{escaped}", "client_email": "a@b.iam.gserviceaccount.com"}}'
    assert _found(sa) == [(escaped[:-2], "private_key")]


def test_an_unterminated_block_is_redacted_to_the_end_of_its_base64():
    lines = [_r(64, B64, i) for i in range(3)]
    text = f"{BEGIN}RSA PRIVATE KEY-----\n" + "\n".join(lines) + "\n\nthe rest was cut off"
    assert _found(text) == [(text[: text.index("\n\n")], "private_key")]


def test_public_keys_certificates_and_ssh_public_keys_are_not_secrets():
    text = _pem("PUBLIC KEY") + "\n" + _pem("CERTIFICATE") + "\n" + _pem("RSA PUBLIC KEY")
    text += f'\nssh-rsa AAAAB3NzaC1yc2E{_r(300, B64)} user@host\npublic_key = "ssh-ed25519 AAAAC3Nz{_r(60, B64)}"\n'
    assert _found(text) == []


# --- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgres://app:{}@db.internal:5432/app",
        "mysql://root:{}@127.0.0.1/shop",
        "mongodb+srv://svc:{}@cluster0.mongodb.net/?retryWrites=true",
        "redis://:{}@cache:6379/0",
        "amqp://worker:{}@mq.internal:5672/",
        "https://deploy:{}@git.internal.net/org/repo.git",
    ],
)
def test_only_the_password_of_a_url_is_a_secret(url: str):
    password = _r(18, ALNUM + "!~")
    text = f'DATABASE_URL="{url.format(password)}"'
    assert _found(text) == [(password, "url_credentials")]


@pytest.mark.parametrize("password", ["<password>", "${DB_PASS}", "password", "****", "xxx", "$PASS", "{password}", "user"])
def test_placeholder_passwords_in_urls_are_not_secrets(password: str):
    assert _found(f"postgres://user:{password}@localhost:5432/db and https://example.com/a:b@c") == []


# --- assignments -----------------------------------------------------------------------------

PASSWORD = "Tr0" + "ub4dor&3" + _r(6)
SECRET = _r(32)


@pytest.mark.parametrize(
    ("template", "type_"),
    [
        ('password = "{p}"', "password_assignment"),
        ("db_password: '{p}'", "password_assignment"),
        ('"client_secret": "{s}",', "generic_secret"),
        ("secret_key={s}", "generic_secret"),
        ("api_key: {s}", "generic_secret"),
        ("token = '{s}'", "generic_secret"),
        ("const apiKey = `{s}`;", "generic_secret"),
        ("mysql --password={p} -u root", "password_assignment"),
        ("login --password {p}", "password_assignment"),
        ("<password>{p}</password>", "password_assignment"),
        ("[db]\npasswd = {p}\n", "password_assignment"),
        ("Authorization: Bearer {s}", "generic_secret"),
        ('headers = {{"Authorization": "Bearer {s}"}}', "generic_secret"),
        ("DB_PASSWORD={p}", "dotenv_secret"),
        ("export SERVICE_TOKEN={s}", "dotenv_secret"),
        ('SIGNING_KEY="{s}"', "dotenv_secret"),
        ("settings.password: str = '{p}'", "password_assignment"),
    ],
)
def test_an_assigned_secret_is_found_as_its_value_only(template: str, type_: str):
    text = template.format(p=PASSWORD, s=SECRET)
    value = PASSWORD if "{p}" in template else SECRET
    assert _found(text) == [(value, type_)]


@pytest.mark.parametrize(
    ("text", "value", "type_"),
    [
        (f"aws_secret_access_key = {_r(40, B64)}", _r(40, B64), "aws_secret_access_key"),
        (f"TWILIO_AUTH_TOKEN={_r(32, HEX)}", _r(32, HEX), "twilio_auth_token"),
        (f"TWILIO_API_KEY=SK{_r(32, HEX, 1)}", "SK" + _r(32, HEX, 1), "twilio_api_key"),
        (f"HEROKU_API_KEY={UUID}", UUID, "heroku_api_key"),
        (f'DD_API_KEY="{_r(32, HEX, 2)}"', _r(32, HEX, 2), "datadog_api_key"),
        (f"cohere_api_key: {_r(40)}", _r(40), "cohere_api_key"),
        (f"MISTRAL_API_KEY={_r(32, seed=3)}", _r(32, seed=3), "mistral_api_key"),
    ],
)
def test_regular_values_count_when_the_key_names_the_provider(text: str, value: str, type_: str):
    assert _found(text) == [(value, type_)]


def test_a_vendor_token_in_an_assignment_keeps_its_vendor_type():
    token = "gh" + "p_" + _r(36)
    assert _found(f"export GITHUB_TOKEN={token}") == [(token, "github_token")]
    assert _found(f'password = "{token}"') == [(token, "github_token")]


@pytest.mark.parametrize(
    "text",
    [
        "password = password_var",
        "token = get_token()",
        "api_key = os.environ['OPENAI_API_KEY']",
        'api_key = os.environ["OPENAI_API_KEY"]',
        "const token = process.env.X;",
        "password: str",
        "def login(user: str, password: str, token: str | None = None) -> bool:",
        "password = ''",
        'password = ""',
        "token = None",
        "auth_enabled = true\nmax_tokens = 4096\ntoken_url = 'https://auth.example.com/token'",
        'password = "YOUR_PASSWORD"\napi_key = "YOUR_API_KEY"\ntoken = "<your-token>"',
        "SECRET_KEY=${SECRET}\nAPI_KEY=$API_KEY\npassword: {{ secret }}\ntoken: '{{ vault_token }}'",
        "password = 'xxxxxxxx'\ntoken = '********'\nsecret = 'changeme'\napi_key = '...'",
        "password = 'secret'\npassword = 'hunter'\npassword = 'CorrectHorse'",
        "password_file = '/run/secrets/db_password'\nkey_path = './certs/server.key'",
        "secret_color = '#ff00aa'\ntoken_version = '1.2.3'",
        "sort_key = 'created_at'\nprimary_key = 'id'",
        "api_key: env::OPENAI_API_KEY",
        'DEBUG_TOKEN_NAME = "X-Debug-Access-Token"',
        'token = "example-token-value-123456"',
        'auth_token = "sample_4f9a8b7c6d5e4f3a"',
        'password_hint = "At least 8 characters"',
        'token_pattern = r"[-!#$%&*+.^_|~0-9a-zA-Z]+"',
        "if password == 'Tr0ub4dor&3x':",
        "public_key = 'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'",
    ],
)
def test_references_placeholders_and_non_values_are_not_secrets(text: str):
    assert _found(text) == []


def test_a_short_or_wordy_generic_value_is_not_a_secret_but_a_random_one_is():
    assert _found('api_key = "abc123"') == []
    assert _found('api_key = "my_api_key_value"') == []
    assert _found(f'api_key = "{_r(20)}"') == [(_r(20), "generic_secret")]


# --- hard negatives --------------------------------------------------------------------------


def test_hashes_ids_and_encoded_images_are_not_secrets():
    sha1, sha256 = _r(40, HEX), _r(64, HEX)
    text = f"""commit {sha1}
Merge: {sha1[:7]} {sha1[7:14]}
image = "registry.example.com/app@sha256:{sha256}"
id = "{UUID}"
"integrity": "sha512-{_r(86, B64)}==",
name = "pkg"
hashes = ["sha256:{sha256}"]
checksum = "{sha256}"
example.com/mod v1.2.3 h1:{_r(43, B64)}=
<img src="data:image/png;base64,{_r(400, B64)}">
color: #a1b2c3; version 4.17.21
veryLongIdentifierNameForSomethingInTheCodebase = someOtherVeryLongFunctionName(argument_one)
"""
    assert _found(text) == []


def test_prose_and_code_that_mention_secrets_are_not_secrets():
    text = (
        "Rotate the API key and set a strong password. The token expires after an hour.\n"
        "def get_secret(name: str) -> str:\n    return vault.read(name)\n"
        "if not token:\n    raise AuthError('missing token')\n"
        "keys = sorted(d.keys(), key=lambda k: k.lower())\n"
    )
    assert _found(text) == []


# --- streaming -------------------------------------------------------------------------------


def test_prose_ending_in_whitespace_is_released_whole():
    assert has_secret_trigger("The quick brown fox jumps. ") is None
    assert has_secret_trigger("line one\nline two\n") is None
    assert has_secret_trigger("") is None


def test_the_last_partial_word_is_held():
    assert has_secret_trigger("here is gh") == len("here is ")
    assert has_secret_trigger("line\nsk-pr") == len("line\n")


def test_an_unfinished_assignment_line_is_held_from_its_key():
    text = "Config:\npassword = 'Tr0ub4dor&3 and more"
    assert has_secret_trigger(text) == len("Config:\n")
    assert has_secret_trigger("Config:\n  db_password: ") == len("Config:\n  ")
    assert has_secret_trigger("run --password ") == len("run ")
    assert has_secret_trigger("Set your password and ") is None
    assert has_secret_trigger("Config:\npassword = 'x'\n") is None


def test_an_open_private_key_block_is_held_until_its_end_or_a_limit():
    head = "Here:\n"
    block = f"{BEGIN}RSA PRIVATE KEY-----\n" + "\n".join(_r(64, B64, i) for i in range(5)) + "\n"
    assert has_secret_trigger(head + block) == len(head)
    assert has_secret_trigger(head + BEGIN + "RSA ") == len(head)
    assert has_secret_trigger(head + block + "-----END RSA PRIVATE KEY-----\n") is None
    assert has_secret_trigger(head + BEGIN + "CERTIFICATE-----\nMIIB\n") is None
    huge = head + BEGIN + "PRIVATE KEY-----\n" + ("A" * 63 + "\n") * 300
    assert has_secret_trigger(huge) is None


def test_a_stream_released_at_every_hold_finds_what_the_whole_text_finds():
    token = "gh" + "p_" + _r(36)
    text = (
        f"Use {token} here.\nDATABASE_URL=postgres://app:{PASSWORD}@db/app\npassword = '{PASSWORD}' in settings\n"
        f"{_pem('PRIVATE KEY')}\nand api_key: {SECRET}\nbye"
    )
    whole = _found(text)
    released, found, buf = 0, [], ""
    for ch in text:
        buf += ch
        hold = has_secret_trigger(buf)
        cut = len(buf) if hold is None else hold
        found += [(buf[f.start : f.end], f.type) for f in find_secrets(buf[:cut])]
        released += cut
        buf = buf[cut:]
    found += _found(buf)
    assert found == whole and len(whole) == 5


# --- query strings, headers, command lines ---------------------------------------------------

# A generated token that has underscores in it, as base64url tokens do, and starts with a letter.
UNDERSCORED = "Qz" + _r(14) + "_" + _r(12, seed=1) + "_" + _r(8, seed=2)
CLI_PASSWORD = "Mx" + "7#qLz!" + _r(6, seed=3)


@pytest.mark.parametrize(
    "template",
    [
        "GET /v2/items?page=3&access_token={} HTTP/1.1",
        "GET /v2/items?access_token={}&sort=asc HTTP/1.1",
        "see https://feeds.example.net/rss?client_secret={}#latest",
        '<a href="/export?format=csv&amp;api_key={}&amp;page=1">CSV</a>',
    ],
)
def test_a_query_parameter_value_ends_at_the_next_parameter(template: str):
    text = template.format(UNDERSCORED)
    assert _found(text) == [(UNDERSCORED, "generic_secret")]


@pytest.mark.parametrize(
    "text",
    [
        "GET /v2/items?token_type=bearer&page=2",
        "https://api.example.com/v1/search?api_key=YOUR_API_KEY&page=2",
        "/export?session=1&api_key=${EXPORT_KEY}&page=3",
        "/cb?state=xyz&access_token=&expires_in=3600",
    ],
)
def test_query_parameters_without_a_secret_value_are_not_secrets(text: str):
    assert _found(text) == []


@pytest.mark.parametrize(
    "template",
    ["X-Auth-Token: {}", "curl -H 'X-Api-Key: {}' https://api.example.com/v1/me", "Authorization: Bearer {}"],
)
def test_an_unquoted_generated_token_with_underscores_is_not_read_as_an_identifier(template: str):
    text = template.format(UNDERSCORED)
    assert _found(text) == [(UNDERSCORED, "generic_secret")]


@pytest.mark.parametrize(
    "text",
    [
        "token = refresh_access_token_v2",
        "api_key = DEFAULT_API_KEY_NAME",
        "secret = self_signed_cert2",
        "auth_token = user_session_token_cache_key_v2",
        "token = __pyx_pw_6cython_7Shadow_1",
        "access_token = OAuthAccessTokenFromRefresh_2",
    ],
)
def test_identifiers_with_underscores_stay_references(text: str):
    assert _found(text) == []


@pytest.mark.parametrize(
    "template",
    [
        "$ sshpass -p '{}' ssh ops@10.1.2.3 uptime",
        "sshpass -p{} rsync -a dist/ ops@host:/srv/",
        "mysql -h db.internal -u app -p'{}' shop",
        "mysqldump -uroot -p{} shop > shop.sql",
        "docker login -u ci-bot -p {} registry.example.com",
        "podman login --username ci-bot -p {} quay.io",
        "curl -u deploy:{} https://ci.example.com/api/health",
        'curl --user "ci:{}" https://ci.example.com/api',
        "redis-cli -h cache.internal -a {} ping",
        "openssl pkcs12 -export -in cert.pem -passout pass:{} -out cert.p12",
        "smbclient //files/share -U admin%{}",
        "/usr/bin/mysql -u root -p{}",
    ],
)
def test_a_password_given_to_a_command_as_an_option_is_found_as_its_value_only(template: str):
    text = template.format(CLI_PASSWORD)
    assert _found(text) == [(CLI_PASSWORD, "password_assignment")]


def test_a_command_with_two_password_options_gives_both():
    other = "Harbor" + "4417" + "~"
    text = f"keytool -importkeystore -srcstorepass {CLI_PASSWORD} -deststorepass {other} -noprompt"
    assert _found(text) == [(CLI_PASSWORD, "password_assignment"), (other, "password_assignment")]


@pytest.mark.parametrize(
    "text",
    [
        "docker run -p 8080:80 nginx",
        "docker compose -p storefront up -d",
        "mkdir -p build/out && cp -p a b",
        "ssh -p 2222 deploy@host",
        "mysql -u root -p shop",
        "mysql -u root -p$MYSQL_ROOT_PASSWORD",
        'curl -u "$CI_USER:$CI_TOKEN" https://ci.example.com',
        "curl -u admin: https://ci.example.com",
        "curl --user-agent 'Mozilla/5.0 (X11)' https://example.com",
        'sshpass -p "$SSHPASS" ssh deploy@host',
        "docker login -u ci-bot --password-stdin quay.io",
        "helm registry login -u me -p ${HELM_PASS} ghcr.io",
        "redis-cli -p 6380 ping",
        "zip -r out.zip dir -x '*.pyc'",
        "pip install -U passlib",
    ],
)
def test_ports_flags_and_references_on_a_command_line_are_not_passwords(text: str):
    assert _found(text) == []


# --- passwords people choose -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("[mail]\nsmtp_pass = Marigold2291!\n", "Marigold2291!"),
        ("<dbPassword>Lantern77.</dbPassword>", "Lantern77."),
        ("database:\n  password: Copper1987~\n", "Copper1987~"),
        ('settings.admin_password = "Wq8#tLz!pR2v.io"', "Wq8#tLz!pR2v.io"),
    ],
)
def test_a_word_with_digits_and_a_symbol_under_a_password_key_is_a_password(text: str, value: str):
    assert _found(text) == [(value, "password_assignment")]


@pytest.mark.parametrize(
    "text",
    [
        "password = changeme",
        "password: str",
        "password = get_password()",
        "password = ${DB_PASS}",
        "password = None",
        "password = user.pass2",
        "password = self.passwd2",
        "token = Sunflower165.",
        'password = "prod-db.json"',
        'smtp_password: "mail.example.com"',
        'password = "admin@example.com"',
    ],
)
def test_references_file_and_host_names_under_a_password_key_are_not_passwords(text: str):
    assert _found(text) == []


def test_a_random_password_with_a_dot_is_not_read_as_a_dotted_name():
    value = "Pq7Xw2LmZr9Tk4Vd" + ".HsN"
    assert _found(f"stringData:\n  KEYSTORE_PASSWORD: {value}\n") == [(value, "password_assignment")]
    assert _found("password = settings.db_password\npassword = cfg.pw2") == []


def test_a_random_value_ending_like_a_file_extension_is_still_a_secret():
    value = "Kx9abTq3" + "LmPz7.io"
    assert _found(f'secret = "{value}"') == [(value, "generic_secret")]
    assert _found('key_file = "server.key"\nsecret = "secrets.yaml"') == []


def test_a_command_password_streams_as_the_whole_text_does():
    text = f"Run this:\n$ sshpass -p '{CLI_PASSWORD}' ssh ops@host uptime\nthen check the logs.\n"
    whole = _found(text)
    found, buf = [], ""
    for ch in text:
        buf += ch
        hold = has_secret_trigger(buf)
        cut = len(buf) if hold is None else hold
        found += [(buf[f.start : f.end], f.type) for f in find_secrets(buf[:cut])]
        buf = buf[cut:]
    found += _found(buf)
    assert found == whole == [(CLI_PASSWORD, "password_assignment")]
