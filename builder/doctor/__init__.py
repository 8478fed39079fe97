"""``builder doctor``: what a build needs, checked before it starts, each miss with how to fix it."""
