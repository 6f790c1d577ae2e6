"""coordhub-loadcheck: validate a running coordhub over HTTP, as a client would.

A tool beside the service, not part of it: it imports nothing from coordhub and
talks to a deployment only through its public endpoints. `run` (in `runner`)
calls the five checks in order — configuration, response times, concurrency,
rate limiting, polling — cancels every operation they started, and returns a
`Report` that `write_report` saves as JSON and Markdown. `cli.main` is the
`coordhub-loadcheck URL` console entry point; `manage.py loadcheck` is an alias.

Modules: `client` (connection and naming answers), `report` (outcomes, results,
files), `configuration` (check 1, the limits the others hold the deployment to),
`timing` (check 2), `starts` (starting and cancelling operations), `admission`
(checks 3 and 4), `polling` (check 5), `runner` (the order and the spending plan),
`cli` (arguments and the entry point).
"""
