"""Which files go to the model, and why the others do not."""

import asyncio

import httpx
from aiohttp import web

from seekgate.review.diff import parse_diff
from seekgate.review.model import ReviewModel
from seekgate.review.run import review_diff
from seekgate.settings import ReviewSettings
from tests.fixtures.servers import serve_app

DIFF = """\
diff --git a/src/app.py b/src/app.py
--- a/src/app.py
+++ b/src/app.py
@@ -1 +1 @@
-a
+b
diff --git a/logo.png b/logo.png
index 1111111..2222222 100644
Binary files a/logo.png and b/logo.png differ
diff --git a/old.txt b/old.txt
deleted file mode 100644
--- a/old.txt
+++ /dev/null
@@ -1 +0,0 @@
-bye
diff --git a/yarn.lock b/yarn.lock
--- a/yarn.lock
+++ b/yarn.lock
@@ -1 +1 @@
-v1
+v2
diff --git a/a.py b/b.py
similarity index 100%
rename from a.py
rename to b.py
diff --git a/vendor/lib b/vendor/lib
index 1111111..2222222 160000
--- a/vendor/lib
+++ b/vendor/lib
@@ -1 +1 @@
-Subproject commit 1111111111111111111111111111111111111111
+Subproject commit 2222222222222222222222222222222222222222
"""


def test_only_text_files_with_new_lines_go_to_the_model_and_the_rest_are_listed_with_a_reason():
    report = asyncio.run(review_diff(parse_diff(DIFF), ReviewSettings(exclude=["*.lock"]), None))
    assert report.skipped == {
        "logo.png": "binary",
        "old.txt": "deleted",
        "yarn.lock": "excluded by review.exclude",
        "b.py": "renamed from a.py, content unchanged",
        "vendor/lib": "submodule",
    }
    assert report.comments == () and report.stats.calls == 0 and report.lint is None


def test_hunks_past_max_calls_are_listed_as_not_reviewed():
    added = "".join(f"+{'x' * 60} {i}\n" for i in range(10))
    hunks = "".join(f"@@ -{n},1 +{n},10 @@\n-old {n}\n{added}" for n in range(100, 1000, 100))
    diff = f"--- a/a.py\n+++ b/a.py\n{hunks}--- a/b.py\n+++ b/b.py\n@@ -1 +1 @@\n-x\n+y\n"
    asked: list[dict] = []

    async def answer(request: web.Request) -> web.Response:
        asked.append(await request.json())
        return web.json_response({"model": "m", "choices": [{"message": {"content": '{"comments": []}'}}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)

    async def main(root: str):
        async with httpx.AsyncClient(base_url=root) as http:
            settings = ReviewSettings(max_calls=2, context_tokens=1024)
            return await review_diff(parse_diff(diff), settings, ReviewModel(http, settings))

    with serve_app(app) as root:
        report = asyncio.run(main(root))
    assert report.stats.calls == len(asked) == 2 and report.failures == []
    assert report.skipped == {"a.py": report.skipped["a.py"], "b.py": "1 hunk past review.max_calls = 2"}
    assert report.skipped["a.py"].endswith("hunks or parts past review.max_calls = 2")
