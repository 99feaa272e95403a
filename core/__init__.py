"""The bottom layer: stack config schema, the stack contract, the controls table and the
names every layer above shares. Imports nothing from the kit's other packages."""
