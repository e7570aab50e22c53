"""Schemathesis hooks for scripts/schemathesis: what a JSON Schema cannot say.

`POST /auth/register` wants `password_confirm` equal to `password`, a rule between two fields
that the description states in words only; a case meant to be valid gets its confirmation
copied from its password, so that it is.
"""

import schemathesis


@schemathesis.hook.apply_to(path="/auth/register", method="POST")
def map_case(ctx, case):
    body = case.body
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if positive and isinstance(body, dict) and isinstance(body.get("password"), str):
        body["password_confirm"] = body["password"]
    return case
