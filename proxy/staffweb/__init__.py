"""The staff pages at `/staff/`: what `patronpay payments` and `patronpay reconcile` do, in a
browser, for circulation and bursar staff who are not shell users (docs/operations.md#staff-pages).

    auth      who may enter (PATRONPAY_STAFF_USERS, PATRONPAY_STAFF_GROUP) and the staff
              sign-in by the web server's sign-on or by CAS
    sessions  staff sessions: a table, a cookie and a lifetime of their own, apart from patrons'
    forms     form bodies and their CSRF token
    pages     the Jinja2 templates, with every value escaped and control characters shown
    routes    the payment pages and actions, the reconcile report, the bursar's CSV downloads

The pages use no script at all. What a payment needs and the advice on it come from
proxy/staff.py, as for the staff commands.
"""
