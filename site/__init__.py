"""The static site (web pages, kiosk pages, locales), shipped as the package `patronpay_site`
so that an installed patronpay serves it; patronpay.site_files finds it."""
