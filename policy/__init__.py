"""The kit's controls as a Pulumi CrossGuard policy pack (`pulumi preview --policy-pack policy`).

An application-level package: it imports `core` only, so each control has one definition
(core/controls) that serves `mlops plan`, the tests, docs/controls.md and this pack."""
