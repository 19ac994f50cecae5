"""The ways a patron signs in on the web: one module per method (sso, cas, primo, alma_guest),
each with its routes, the settings it needs and how the sign-in page offers it, registered in
order in `registry`. Adding a method is a new module here plus one line in `registry.METHODS`.
"""
