"""Labelled PII cases: (text, region hint, [(type, exact substring), ...]).

Positives use published examples whose check digits are known to be valid (CPF 529.982.247-25,
RUT 12.345.678-5, DNI 12345678Z, NIE X1234567L, CURP HEGG560427MVZRRL04, IBAN DE89 3704 0044
0532 0130 00, the card networks' test numbers ...) or numbers whose check digit was worked out
by hand.  Negatives are the lookalikes a careless detector redacts: wrong check digits, dates,
versions, order numbers, private and documentation IP ranges, image names.  An empty list means
nothing in the text may be reported.  Used by tests/test_pii.py and bench/bench_pii.py.
"""
from __future__ import annotations

PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n"
    "KUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQJAIJLixBy2qpFoS4DSmoEm\n"
    "-----END RSA PRIVATE KEY-----"
)
TRUNCATED_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACBl8VRjzbo1T5Jw3QYFRyNR0Xq"
)

CASES: list[tuple[str, str | None, list[tuple[str, str]]]] = [
    # --- email ---------------------------------------------------------------------------------
    ("Schreiben Sie an anna.mueller@example.de für Rückfragen.", "DE",
     [("email", "anna.mueller@example.de")]),
    ("Contact: j.smith+news@mail.co.uk or support@shop-online.com.", None,
     [("email", "j.smith+news@mail.co.uk"), ("email", "support@shop-online.com")]),
    ("kontakt@zoo-berlin.de", "DE", [("email", "kontakt@zoo-berlin.de")]),
    ("<img src=\"/static/logo@2x.png\"> and icon@3x.webp", None, []),
    ("Use git@github.com:org/repo.git? no: the handle @anna_m on social media", None,
     [("email", "git@github.com")]),
    ("Rechnung vom 16.01.2023, fällig am 30.01.2023", "DE", []),
    # --- ip ------------------------------------------------------------------------------------
    ("Zugriff von 81.169.145.105 um 12:30 Uhr protokolliert.", "DE", [("ip", "81.169.145.105")]),
    ("Client 2a00:1450:4001:82b::200e connected", None, [("ip", "2a00:1450:4001:82b::200e")]),
    ("Resolver IP address: 8.8.8.8", None, [("ip", "8.8.8.8")]),
    ("Router: 192.168.178.1, NAS 10.0.0.5, localhost 127.0.0.1, docs 203.0.113.7", None, []),
    ("Example network 2001:db8::1 and loopback ::1, link-local fe80::1", None, []),
    ("Update auf Version 1.2.3.4 behebt den Fehler; siehe Abschnitt 2.1.4.3", "DE", []),
    ("Release notes for v5.15.0.1 and build 4.2.2.1 are online", None, []),
    ("Section 1.2.3.4 applies.", None, []),
    ("Uhrzeit 12:30:45, MAC 00:1A:2B:3C:4D:5E", None, []),
    # --- phone ---------------------------------------------------------------------------------
    ("Telefon: 030 12345678 (Mo-Fr)", "DE", [("phone", "030 12345678")]),
    ("Tel.-Nr. 0221 9876543", "DE", [("phone", "0221 9876543")]),
    ("Call us at +1 650-253-0000 today.", None, [("phone", "+1 650-253-0000")]),
    ("Zadzwoń: +48 22 123 45 67", "PL", [("phone", "+48 22 123 45 67")]),
    ("UK office: +44 20 7946 0958", "DE", [("phone", "+44 20 7946 0958")]),
    ("Llámanos al 912 345 678", "ES", [("phone", "912 345 678")]),
    ("Bestellnummer 0301234567 bitte angeben", "DE", []),
    ("ISBN 978-3-16-148410-0", "DE", []),
    ("Preis: 1.234,56 € inkl. MwSt., Artikel 4711", "DE", []),
    ("Am 2023-01-16 um 14:00 geöffnet", "DE", []),
    ("Order #1234567890 shipped", "US", []),
    ("Call 030 12345678 for Berlin", None, []),        # national form without a region hint
    # --- payment cards -------------------------------------------------------------------------
    ("Testkarte 4111 1111 1111 1111 gültig bis 12/26", "DE", [("card", "4111 1111 1111 1111")]),
    ("MC 5555555555554444 / Amex 3782-822463-10005", None,
     [("card", "5555555555554444"), ("card", "3782-822463-10005")]),
    ("Discover 6011111111111117, JCB 3530111333300000", None,
     [("card", "6011111111111117"), ("card", "3530111333300000")]),
    ("Mastercard 2-series 2223 0031 2200 3222", None, [("card", "2223 0031 2200 3222")]),
    ("Wrong digit: 4111 1111 1111 1112", None, []),
    ("Luhn-valid but no issuer: 1234 5678 1234 5670", None, []),
    ("Tracking 1Z999AA10123456784 and 9400 1000 0000 0000 0000 00", None, []),
    # --- iban ----------------------------------------------------------------------------------
    ("IBAN: DE89 3704 0044 0532 0130 00, BIC COBADEFFXXX", "DE", [("iban", "DE89 3704 0044 0532 0130 00")]),
    ("Pay to GB82WEST12345698765432.", None, [("iban", "GB82WEST12345698765432")]),
    ("Cuenta ES91 2100 0418 4502 0005 1332", "ES", [("iban", "ES91 2100 0418 4502 0005 1332")]),
    ("Numer konta PL61 1090 1014 0000 0712 1981 2874", "PL", [("iban", "PL61 1090 1014 0000 0712 1981 2874")]),
    ("RIB FR14 2004 1010 0505 0001 3M02 606", "FR", [("iban", "FR14 2004 1010 0505 0001 3M02 606")]),
    ("Falsche Prüfziffer DE89 3704 0044 0532 0130 01", "DE", []),
    ("Wrong length DE89 3704 0044 0532 0130", "DE", []),
    ("Model number AB12 3456 7890 1234 5678", None, []),
    # --- Uruguay cédula ------------------------------------------------------------------------
    ("Cédula de identidad 1.234.567-2 del titular", "UY", [("uy_ci", "1.234.567-2")]),
    ("CI 4.567.890-5", "UY", [("uy_ci", "4.567.890-5")]),
    ("cédula 31415921", "UY", [("uy_ci", "31415921")]),
    ("Cédula 1.234.567-3 (dígito incorrecto)", "UY", []),
    # --- Brazil CPF ----------------------------------------------------------------------------
    ("CPF do cliente: 529.982.247-25", "BR", [("br_cpf", "529.982.247-25")]),
    ("Informe seu CPF 12345678909 no cadastro", "BR", [("br_cpf", "12345678909")]),
    ("CPF inválido 529.982.247-24 e 111.111.111-11", "BR", []),
    ("Pedido 12345678909 enviado", "BR", []),          # bare 11 digits without "CPF"
    # --- Chile RUT -----------------------------------------------------------------------------
    ("RUT 12.345.678-5 del contribuyente", "CL", [("cl_rut", "12.345.678-5")]),
    ("RUN: 7654321-6", "CL", [("cl_rut", "7654321-6")]),
    ("Empresa 15.302.117-1 y persona 23.456.789-6", "CL",
     [("cl_rut", "15.302.117-1"), ("cl_rut", "23.456.789-6")]),
    ("RUT 12.345.678-K no es válido", "CL", []),
    # --- Spain DNI / NIE -----------------------------------------------------------------------
    ("DNI 12345678Z del solicitante", "ES", [("es_dni", "12345678Z")]),
    ("NIE X1234567L y Y1234567X", "ES", [("es_dni", "X1234567L"), ("es_dni", "Y1234567X")]),
    ("DNI 87654321-X", "ES", [("es_dni", "87654321-X")]),
    ("DNI 12345678A incorrecto, referencia 20230116B", "ES", []),
    # --- Argentina CUIT / CUIL -----------------------------------------------------------------
    ("CUIT 20-12345678-6 responsable inscripto", "AR", [("ar_cuit", "20-12345678-6")]),
    ("CUIL: 27-28033514-8", "AR", [("ar_cuit", "27-28033514-8")]),
    ("CUIT 30712345671", "AR", [("ar_cuit", "30712345671")]),
    ("CUIT 20-12345678-5 (mal)", "AR", []),
    # --- Mexico CURP ---------------------------------------------------------------------------
    ("CURP: HEGG560427MVZRRL04", "MX", [("mx_curp", "HEGG560427MVZRRL04")]),
    ("CURP HEGG560427MVZRRL05 con dígito erróneo", "MX", []),
    ("Código HEGG561327MVZRRL04 (mes 13)", "MX", []),
    # --- US SSN --------------------------------------------------------------------------------
    ("SSN 536-22-8471 on file", "US", [("us_ssn", "536-22-8471")]),
    ("Her social security number is 212671234.", "US", [("us_ssn", "212671234")]),
    ("Invalid: 000-12-3456, 666-12-3456, 912-34-5678, 536-00-8471, 536-22-0000", "US", []),
    ("The famous wallet card 078-05-1120", "US", []),
    ("Part no. 212671234 in stock", "US", []),         # bare 9 digits without SSN context
    # --- secrets -------------------------------------------------------------------------------
    ("aws_access_key_id = AKIAZ3MSJV4W5GLVQ7XA", None, [("aws_key", "AKIAZ3MSJV4W5GLVQ7XA")]),
    ("export AWS_ACCESS_KEY_ID=ASIAY34FZKBOKMUTVV7A", None, [("aws_key", "ASIAY34FZKBOKMUTVV7A")]),
    ("docs: AKIAIOSFODNN7EXAMPLE and AKIA0000000000000000", None, []),
    ("config:\n" + PRIVATE_KEY + "\nend", None, [("private_key", PRIVATE_KEY)]),
    ("pasted: " + TRUNCATED_KEY, None, [("private_key", TRUNCATED_KEY)]),
    ("-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKj34GkxFhD9\n-----END PUBLIC KEY-----", None, []),
    # --- mixed page ----------------------------------------------------------------------------
    ("Impressum: Max Beispiel, Tel. +49 89 1234567, E-Mail max@beispiel-firma.de, "
     "IBAN DE89 3704 0044 0532 0130 00. Version 2.4.1.0 vom 01.02.2024.", "DE",
     [("phone", "+49 89 1234567"), ("email", "max@beispiel-firma.de"), ("iban", "DE89 3704 0044 0532 0130 00")]),
    # --- lookalikes checked after the detector was written (not tuned to it) --------------------
    ("PLZ 10115 Berlin, 3.645.000 Einwohner, seit 1237", "DE", []),
    ("Aktenzeichen 2 BvR 1234/19 vom 12.03.2020", "DE", []),
    ("Koordinaten 52.520008, 13.404954", "DE", []),
    ("Unix time 1700000000 and 1699999999", "DE", []),
    ("Artikelnummer: 12345678901, Seite 123456789 von 2", "DE", []),
    ("Postfach 10 12 34, 50123 Köln", "DE", []),
    ("Am 12.03.2020 um 12.30 Uhr, Preise 19,99 29,99 39,99", "DE", []),
    ("Mobil: 0171 1234567", "DE", [("phone", "0171 1234567")]),
    ("(650) 253-0000 call", "US", [("phone", "(650) 253-0000")]),
    ("tel. 600 123 456", "PL", [("phone", "600 123 456")]),
    # --- false positives seen on the realweb pages, fixed and kept as regressions --------------
    ("Destiny 2 Release: 06.09.2017 4 7.3 Ganz okay", "DE", []),
    ("Unverändert gültig seit: 05.11.2021", "DE", []),
    ("Latitude: 53.368944 Longitude: 7.1", "DE", []),
    ("Steuernummer 27/027/36500", "DE", []),
    ("Firefox 2.0.0.16 - SeaMonkey 1.1", "DE", []),
    ("Abashiri +81 158-23-2012 Prison", None, [("phone", "+81 158-23-2012")]),
    ("FIT FOR FUN 02.01.23 09:51 https://example.org", "DE", []),
    ("Die Stadt erkaufte sich im Jahr 1681 bei Kaiser Leopold", "DE", []),
    ("Vidéos youtube 01 43 31 80 49 news", "FR", [("phone", "01 43 31 80 49")]),
]


def expected_spans(text: str, labels: list[tuple[str, str]]) -> list[tuple[str, int, int]]:
    """Labels as (type, start, end); each substring is taken at its first unused occurrence."""
    spans = []
    used: dict[str, int] = {}
    for kind, sub in labels:
        start = text.find(sub, used.get(sub, 0))
        if start < 0:
            raise ValueError(f"label {sub!r} not in {text!r}")
        used[sub] = start + len(sub)
        spans.append((kind, start, start + len(sub)))
    return sorted(spans, key=lambda s: s[1])
