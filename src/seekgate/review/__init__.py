"""The pull-request review bot (`seekgate review`): a diff reviewed by the gateway's ci task,
comments kept to the lines the diff shows, linters beside them, the review posted to GitHub.

(The human-review queue for high-risk requests is a different thing: seekgate.reviews.)

    diff.py     unified diffs as files, hunks and numbered lines; `git diff BASE...HEAD`
    prompt.py   hunks packed into calls within a token budget; the answer's schema; reading replies
    anchor.py   comments placed on lines the diff shows, or moved there, or dropped, and counted
    model.py    calls to the gateway (running, or built in-process)
    lint.py     configured linters on the changed files
    run.py      one review, start to end
    report.py   Markdown, JSON and the exit-code policy
    github.py   the GitHub REST API: one review, updated on every run
"""
