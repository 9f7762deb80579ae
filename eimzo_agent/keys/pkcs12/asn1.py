"""What malformed ASN.1 looks like here: asn1crypto parses lazily and reports bad input with any of these."""

ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)
