"""Generate ``samples/sample.warc.gz``: a small, deterministic, Common-Crawl-shaped WARC.

The file exercises every stage of the pipeline on one laptop in seconds: extraction (boilerplate,
charsets, content/transfer encodings, non-HTML and non-200 responses, a truncated and a revisit
record, one corrupt gzip member in the middle), the filters (language, quality, toxicity, PII,
AI opt-out signals) and dedup (URL variants, exact copies, near copies, a near-duplicate chain,
pages that share only their site template).

Article fragments live in ``samples/pages/<id>.html`` (the prose, written for this project);
this script wraps them in per-site boilerplate, encodes them, and writes the WARC. ``manifest()``
describes every fetch and what a correct pipeline is expected to do with it, so tests elsewhere can
use the sample as ground truth.

    python samples/make_sample.py [--out samples/sample.warc.gz]

Determinism: record ids are UUIDv5 of the record's type, URL and date; every date is fixed; warcio's
gzip wrapper (zlib, level 9) writes gzip headers with mtime 0 and this script pins their OS byte;
the one gzip-encoded HTTP body is written with ``gzip.compress(..., mtime=0)``. The output depends
only on this file, the page fragments and the Deflate implementation: stock zlib gives the same
bytes everywhere at a fixed level, a drop-in such as zlib-ng may not (the test says which).
"""
from __future__ import annotations

import argparse
import copy
import functools
import gzip
import hashlib
import html
import io
import json
import re
import struct
import sys
import uuid
import zlib
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

HERE = Path(__file__).resolve().parent
PAGES_DIR = HERE / "pages"
DEFAULT_OUT = HERE / "sample.warc.gz"
WARC_FILENAME = "CC-MAIN-SAMPLE-20240518010000-00000.warc.gz"
CRAWL_START = datetime(2024, 5, 18, 1, 0, 0, tzinfo=timezone.utc)
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "sample.corpus-pipeline.example")

# --------------------------------------------------------------------------------------------
# Boilerplate: per-language interface strings and per-site templates
# --------------------------------------------------------------------------------------------

UI = {
    "en": dict(
        cookie="We use cookies and similar technologies to personalise content, measure traffic "
               "and show relevant adverts. By clicking \u201cAccept all\u201d you agree to this. "
               "You can change your choice at any time under Privacy settings.",
        accept="Accept all", settings="Manage settings", search="Search", skip="Skip to content",
        share="Share this article", home="Home", most_read="Most read", tags="Tags",
        news_title="Get the newsletter",
        news_text="The best stories of the week, straight to your inbox every Friday. "
                  "No spam, unsubscribe at any time.",
        subscribe="Subscribe", email="Your email address",
        footer=["About us", "Contact", "Advertise", "Privacy policy", "Cookie settings",
                "Terms of use", "Sitemap"],
        rights="All rights reserved."),
    "de": dict(
        cookie="Wir verwenden Cookies und \u00e4hnliche Technologien, um Inhalte zu "
               "personalisieren, Zugriffe zu analysieren und passende Werbung anzuzeigen. Mit "
               "einem Klick auf \u201eAlle akzeptieren\u201c stimmen Sie dem zu. Ihre Auswahl "
               "k\u00f6nnen Sie jederzeit in den Datenschutz-Einstellungen \u00e4ndern.",
        accept="Alle akzeptieren", settings="Einstellungen", search="Suche",
        skip="Zum Inhalt springen", share="Artikel teilen", home="Startseite",
        most_read="Meistgelesen", tags="Schlagw\u00f6rter", news_title="Newsletter abonnieren",
        news_text="Die wichtigsten Nachrichten der Woche jeden Freitag kostenlos in Ihrem "
                  "Postfach. Abmeldung jederzeit m\u00f6glich.",
        subscribe="Anmelden", email="Ihre E-Mail-Adresse",
        footer=["Impressum", "Datenschutz", "Kontakt", "AGB", "Cookie-Einstellungen",
                "Mediadaten", "Barrierefreiheit"],
        rights="Alle Rechte vorbehalten."),
    "pl": dict(
        cookie="U\u017cywamy plik\u00f3w cookies i podobnych technologii, aby dopasowa\u0107 "
               "tre\u015bci, analizowa\u0107 ruch i wy\u015bwietla\u0107 reklamy. Klikaj\u0105c "
               "\u201eAkceptuj\u0119\u201d, wyra\u017casz na to zgod\u0119. Ustawienia mo\u017cesz "
               "zmieni\u0107 w ka\u017cdej chwili w polityce prywatno\u015bci.",
        accept="Akceptuj\u0119", settings="Ustawienia", search="Szukaj",
        skip="Przejd\u017a do tre\u015bci", share="Udost\u0119pnij", home="Strona g\u0142\u00f3wna",
        most_read="Najcz\u0119\u015bciej czytane", tags="Tagi",
        news_title="Zapisz si\u0119 do newslettera",
        news_text="Najwa\u017cniejsze informacje z regionu raz w tygodniu na Twoj\u0105 "
                  "skrzynk\u0119. Bez spamu.",
        subscribe="Zapisz si\u0119", email="Tw\u00f3j adres e-mail",
        footer=["O nas", "Kontakt", "Reklama", "Polityka prywatno\u015bci", "Regulamin", "RODO",
                "Mapa strony"],
        rights="Wszelkie prawa zastrze\u017cone."),
    "es": dict(
        cookie="Utilizamos cookies propias y de terceros para mejorar tu experiencia, analizar "
               "el tr\u00e1fico y mostrarte publicidad personalizada. Al pulsar \u00abAceptar\u00bb "
               "consientes su uso. Puedes cambiar la configuraci\u00f3n en cualquier momento.",
        accept="Aceptar", settings="Configurar", search="Buscar", skip="Ir al contenido",
        share="Compartir", home="Inicio", most_read="Lo m\u00e1s le\u00eddo", tags="Etiquetas",
        news_title="Suscr\u00edbete al bolet\u00edn",
        news_text="Recibe cada semana nuestros mejores art\u00edculos en tu correo. Sin spam.",
        subscribe="Suscribirme", email="Tu correo electr\u00f3nico",
        footer=["Qui\u00e9nes somos", "Contacto", "Aviso legal", "Pol\u00edtica de privacidad",
                "Pol\u00edtica de cookies", "Publicidad", "Mapa del sitio"],
        rights="Todos los derechos reservados."),
    "fr": dict(
        cookie="Nous utilisons des cookies pour am\u00e9liorer votre exp\u00e9rience, mesurer "
               "l'audience et vous proposer des publicit\u00e9s adapt\u00e9es. En cliquant sur "
               "\u00ab Tout accepter \u00bb, vous consentez \u00e0 leur utilisation. Vous pouvez "
               "modifier vos choix \u00e0 tout moment.",
        accept="Tout accepter", settings="Param\u00e9trer", search="Rechercher",
        skip="Aller au contenu", share="Partager", home="Accueil", most_read="Les plus lus",
        tags="Mots-cl\u00e9s", news_title="Inscrivez-vous \u00e0 la newsletter",
        news_text="Recevez chaque semaine nos meilleurs articles directement dans votre "
                  "bo\u00eete mail. D\u00e9sinscription en un clic.",
        subscribe="Je m'inscris", email="Votre adresse e-mail",
        footer=["Qui sommes-nous", "Contact", "Mentions l\u00e9gales",
                "Politique de confidentialit\u00e9", "Gestion des cookies", "Publicit\u00e9",
                "Plan du site"],
        rights="Tous droits r\u00e9serv\u00e9s."),
    "zh": dict(
        cookie="本网站使用Cookie来改善您的浏览体验、分析网站流量并展示个性化广告。"
               "点击\u201c全部接受\u201d即表示您同意我们使用Cookie。您可以随时在隐私设置中更改您的选择。",
        accept="全部接受", settings="设置", search="搜索", skip="跳到正文", share="分享到",
        home="首页", most_read="热门文章", tags="标签", news_title="订阅我们的周刊",
        news_text="每周精选好文，直接发送到您的邮箱，随时可以退订。", subscribe="立即订阅",
        email="您的邮箱地址",
        footer=["关于我们", "联系我们", "广告合作", "隐私政策", "用户协议", "网站地图", "意见反馈"],
        rights="版权所有"),
    "ja": dict(
        cookie="当サイトでは、サービスの向上やアクセス解析、広告配信のためにCookieを使用しています。"
               "「同意する」をクリックすると、Cookieの使用に同意したものとみなされます。設定はいつでも変更できます。",
        accept="同意する", settings="設定", search="検索", skip="本文へ移動",
        share="この記事をシェア", home="ホーム", most_read="人気の記事", tags="タグ",
        news_title="メールマガジン登録",
        news_text="新着記事やおすすめ情報を毎週お届けします。配信はいつでも停止できます。",
        subscribe="登録する", email="メールアドレス",
        footer=["運営者情報", "お問い合わせ", "プライバシーポリシー", "利用規約", "広告掲載について",
                "サイトマップ"],
        rights="All Rights Reserved."),
}

# Every site: brand, language, main navigation, sidebar list ("most read"), tag cloud.
SITES = {
    "harbourcourier": dict(
        lang="en", brand="The Harbour Town Courier", server="nginx/1.24.0",
        nav=["News", "Sport", "Business", "What's on", "Property", "Jobs", "Obituaries",
             "Letters"],
        sidebar=["Harbour Street library reopens after eighteen months of flood repairs",
                 "Pupils turn a disused car park into a kitchen garden",
                 "Harbour dredging to start in June, ferry timetable to change",
                 "Lifeboat crew called out twice in one night",
                 "Planning row over former net loft flats",
                 "Tide tables for the week ahead"],
        tags=["Harbour", "Council", "Schools", "Transport", "Weather"]),
    "coastwire": dict(
        lang="en", brand="Coast Wire", server="Apache",
        nav=["Latest", "Regions", "Politics", "Environment", "Opinion", "Podcasts"],
        sidebar=["Ferry operators warn of summer staff shortages",
                 "Beach clean volunteers collect two tonnes of plastic",
                 "Fishing quotas: what the new deal means for small boats",
                 "Coastal path section closed after landslip",
                 "Regional round-up: the week in pictures"],
        tags=["Regions", "Libraries", "Flooding", "Councils"]),
    "kitchennotes": dict(
        lang="en", brand="Kitchen Notes", server="cloudflare",
        nav=["Recipes", "Baking", "Soups", "Preserves", "Kitchen diary", "About Rosie"],
        sidebar=["Barley and mushroom soup for a wet Sunday",
                 "Thirty days of sourdough: what I learned",
                 "Rhubarb and ginger jam", "A very lazy lentil dal",
                 "How to rescue a sulking sourdough starter"],
        tags=["Vegetarian", "Budget", "Batch cooking", "Winter"]),
    "fixitforum": dict(
        lang="en", brand="Harbour Talk Forums", server="nginx",
        nav=["Forums", "What's new", "Members", "Marketplace", "Help", "Log in", "Register"],
        sidebar=["Kitchen mixer tap dripping even when fully closed",
                 "Route 14 timetable change \u2013 is anyone else fed up?",
                 "Best chip shop in town? (2024 edition)",
                 "Lost cat, grey tabby, Fore Street area",
                 "Recommend a reliable roofer"],
        tags=["Plumbing", "Transport", "Off topic", "Local"]),
    "rowingclub": dict(
        lang="en", brand="Harbour Rowing Club", server="Apache/2.4.58",
        nav=["Home", "Join", "Coaching", "Juniors", "Regatta", "Boathouse hire", "Contact"],
        sidebar=["Regatta 2024: entries now open", "Learn to row course: September intake",
                 "Boathouse refurbishment appeal", "Club kit order deadline"],
        tags=["Regatta", "Volunteers", "Club news"]),
    "gadgetbench": dict(
        lang="en", brand="GadgetBench", server="nginx",
        nav=["Reviews", "Best picks", "Deals", "Kitchen", "Audio", "Phones", "How we test"],
        sidebar=["The best coffee grinders for filter coffee",
                 "Review: Fernley stand mixer", "Five kettles under 40 pounds",
                 "Are smart plugs worth it?", "Review: the Alto milk frother"],
        tags=["Kitchen", "Coffee", "Reviews"]),
    "dealfinder": dict(
        lang="en", brand="DealFinder Reviews", server="openresty",
        nav=["Top deals", "Price tracker", "Kitchen", "Home", "Tech", "Vouchers"],
        sidebar=["Today's best kitchen deals", "Price drop: Brightwell K2",
                 "Voucher codes for coffee gear", "Black Friday price history"],
        tags=["Deals", "Kettles", "Price tracker"]),
    "topkettles": dict(
        lang="en", brand="Best Kettles Top 10", server="LiteSpeed",
        nav=["Home", "Top 10 kettles", "Buying guide", "Contact"],
        sidebar=["Top 10 gooseneck kettles", "Top 10 cordless kettles",
                 "Top 10 travel kettles", "Top 10 kettle descalers"],
        tags=["Kettles", "Top 10"]),
    "cheapflights": dict(
        lang="en", brand="Cheap Flights Best Deals", server="Apache",
        nav=["Cheap flights", "Cheap hotels", "Cheap car hire", "Cheap holidays", "Deals"],
        sidebar=["Cheap flights London", "Cheap flights Paris", "Cheap flights New York",
                 "Cheap flights Berlin", "Cheap flights Madrid", "Cheap flights Rome"],
        tags=["cheap flights", "flight deals", "cheap airfare"]),
    "themeforge": dict(
        lang="en", brand="Harbour Theme Demo", server="nginx",
        nav=["Home", "Blog", "Portfolio", "Shop", "Contact"],
        sidebar=["Hello world!", "Sample page", "Another sample post"],
        tags=["Uncategorized"]),
    "elbufer": dict(
        lang="de", brand="Elbufer Anzeiger", server="nginx",
        nav=["Lokales", "Region", "Politik", "Wirtschaft", "Sport", "Kultur", "Veranstaltungen",
             "Traueranzeigen"],
        sidebar=["Stadtrat beschlie\u00dft neue Radwege an der Uferstra\u00dfe",
                 "B\u00e4ckerei Hansen feiert hundert Jahre am Markt",
                 "Haushaltsplan 2024: Wo die Stadt sparen will",
                 "Hafenfest: Das ist das Programm",
                 "Feuerwehr l\u00f6scht Brand in Lagerhalle"],
        tags=["Stadtrat", "Verkehr", "Handwerk", "Innenstadt"]),
    "fernweh": dict(
        lang="de", brand="Fernweh-Notizen", server="Apache",
        nav=["Start", "Wandern", "Radreisen", "St\u00e4dtetrips", "Ausr\u00fcstung", "\u00dcber uns"],
        sidebar=["Packliste f\u00fcr Mehrtagestouren", "Mit dem Zug in die Berge",
                 "Die sch\u00f6nsten H\u00fctten im Mittelgebirge", "Wandern mit Kindern"],
        tags=["Wandern", "H\u00fctten", "Mittelgebirge"]),
    "heimwerker": dict(
        lang="de", brand="Heimwerker-Ratgeber", server="nginx",
        nav=["Ratgeber", "Energie", "Garten", "Werkzeug", "Renovieren", "Forum"],
        sidebar=["W\u00e4rmepumpe im Altbau: Lohnt sich das?",
                 "Fenster richtig abdichten", "Solarmodule reinigen", "Stromkosten senken"],
        tags=["Solar", "Energie", "Balkon"]),
    "gazeta": dict(
        lang="pl", brand="Gazeta Nadwi\u015bla\u0144ska", server="nginx",
        nav=["Wiadomo\u015bci", "Region", "Sport", "Biznes", "Kultura", "Og\u0142oszenia",
             "Nekrologi"],
        sidebar=["Remont mostu na Wi\u015ble potrwa d\u0142u\u017cej",
                 "Nowe linie autobusowe od czerwca", "Festyn rodzinny na bulwarach",
                 "Szpital miejski z nowym oddzia\u0142em"],
        tags=["Miasto", "Komunikacja", "Inwestycje"]),
    "kuchnia": dict(
        lang="pl", brand="Kuchnia na Zakr\u0119cie", server="Apache",
        nav=["Przepisy", "Ciasta", "Zupy", "Przetwory", "O mnie", "Kontakt"],
        sidebar=["Barszcz czerwony na zakwasie", "Kopytka jak u babci",
                 "Sernik bez spodu", "Kiszone og\u00f3rki krok po kroku"],
        tags=["Kuchnia polska", "Pierogi", "\u015awi\u0119ta"]),
    "ogrodnicy": dict(
        lang="pl", brand="Forum Dzia\u0142kowc\u00f3w", server="nginx",
        nav=["Forum", "Nowe posty", "U\u017cytkownicy", "Regulamin", "Zaloguj", "Rejestracja"],
        sidebar=["Kiedy sia\u0107 marchew?", "Kompostownik z palet",
                 "Mszyce na porzeczkach", "Pomidory w tunelu foliowym"],
        tags=["Krzewy owocowe", "Szkodniki", "Ekologia"]),
    "cuaderno": dict(
        lang="es", brand="Cuaderno de Viaje", server="nginx",
        nav=["Destinos", "Escapadas", "Rutas", "Gastronom\u00eda", "Consejos", "Sobre m\u00ed"],
        sidebar=["Qu\u00e9 ver en Teruel en un d\u00eda", "Pueblos con encanto de Arag\u00f3n",
                 "Ruta en coche por la sierra", "D\u00f3nde comer migas"],
        tags=["Arag\u00f3n", "Escapadas", "Pueblos"]),
    "cafeteros": dict(
        lang="es", brand="Cafeteros", server="Apache",
        nav=["An\u00e1lisis", "Gu\u00edas", "Recetas", "Cafeteras", "Molinillos", "Ofertas"],
        sidebar=["Las mejores cafeteras de filtro", "C\u00f3mo elegir molinillo",
                 "Gu\u00eda de tuestes", "Prensa francesa paso a paso"],
        tags=["Molinillos", "Caf\u00e9 de filtro", "An\u00e1lisis"]),
    "margot": dict(
        lang="fr", brand="La Cuisine de Margot", server="nginx",
        nav=["Recettes", "Entr\u00e9es", "Plats", "Desserts", "Conserves", "\u00c0 propos"],
        sidebar=["Quiche lorraine sans chichis", "Soupe \u00e0 l'oignon gratin\u00e9e",
                 "Clafoutis aux cerises", "G\u00e2teau au yaourt"],
        tags=["Cuisine familiale", "Tartes", "L\u00e9gumes"]),
    "riverain": dict(
        lang="fr", brand="Le Petit Riverain", server="Apache",
        nav=["Actualit\u00e9", "Communes", "Sports", "Loisirs", "Agenda", "Annonces"],
        sidebar=["Le march\u00e9 de nuit revient cet \u00e9t\u00e9",
                 "Travaux sur le pont : d\u00e9viation mise en place",
                 "Le club de cano\u00eb c\u00e9l\u00e8bre ses cinquante ans",
                 "F\u00eate du pain : un succ\u00e8s"],
        tags=["Patrimoine", "Associations", "F\u00eates"]),
    "lvxing": dict(
        lang="zh", brand="旅行笔记", server="Tengine",
        nav=["首页", "游记", "攻略", "美食", "摄影", "关于我"],
        sidebar=["雨季里的古镇三日", "一个人的高铁旅行", "山里的民宿推荐", "古镇美食清单"],
        tags=["古镇", "旅行", "美食"]),
    "yangtai": dict(
        lang="zh", brand="阳台花园", server="Tengine",
        nav=["首页", "蔬菜", "花卉", "多肉", "工具", "问答"],
        sidebar=["阳台种番茄全攻略", "小白也能养活的十种香草", "自制堆肥的方法", "夏天如何防虫"],
        tags=["番茄", "阳台种菜", "新手"]),
    "okazu": dict(
        lang="ja", brand="さくら台所日記", server="Apache",
        nav=["ホーム", "和食", "洋食", "お弁当", "おやつ", "プロフィール"],
        sidebar=["ほっこり肉じゃがの作り方", "基本のだしの取り方", "簡単そぼろ弁当", "季節の炊き込みご飯"],
        tags=["和食", "煮物", "家庭料理"]),
    "sanpo": dict(
        lang="ja", brand="散歩ノート", server="nginx",
        nav=["ホーム", "街歩き", "本屋", "カフェ", "旅", "このブログについて"],
        sidebar=["港町の古本屋めぐり", "雨の日の美術館", "商店街の喫茶店", "川沿いを歩く"],
        tags=["古本屋", "街歩き", "休日"]),
}

SITE_HOSTS = {
    "harbourcourier": "www.harbourcourier.example", "coastwire": "www.coastwire.example",
    "kitchennotes": "kitchen-notes.example", "fixitforum": "forum.harbourtalk.example",
    "rowingclub": "www.harbourrowing.example", "gadgetbench": "www.gadgetbench.example",
    "dealfinder": "www.dealfinder.example", "topkettles": "best-kettles-top10.example",
    "cheapflights": "cheap-flights-best-deals.example", "themeforge": "demo.themeforge.example",
    "elbufer": "www.elbufer-anzeiger.example", "fernweh": "www.fernweh-notizen.example",
    "heimwerker": "www.heimwerker-ratgeber.example", "gazeta": "www.gazeta-nadwislanska.example",
    "kuchnia": "kuchnia-na-zakrecie.example", "ogrodnicy": "forum.dzialkowcy.example",
    "cuaderno": "cuadernodeviaje.example", "cafeteros": "www.cafeteros.example",
    "margot": "lacuisinedemargot.example", "riverain": "www.lepetitriverain.example",
    "lvxing": "www.lvxing-biji.example", "yangtai": "yangtai-huayuan.example",
    "okazu": "okazu-nikki.example", "sanpo": "sanpo-note.example",
}


def render_page(site_id: str, article: str, *, charset_tag: str = "", extra_head: str = "",
                path: str = "/") -> str:
    """Wrap an article fragment in its site's full page template (heavy boilerplate)."""
    site = SITES[site_id]
    ui = UI[site["lang"]]
    esc = html.escape
    title_match = re.search(r"<h1>(.*?)</h1>", article, re.S)
    title = title_match.group(1) if title_match else site["brand"]
    nav = "".join(f'<li><a href="/{_slug(x)}/">{esc(x)}</a></li>' for x in site["nav"])
    side = "".join(f'<li><a href="/{_slug(x)}">{esc(x)}</a></li>' for x in site["sidebar"])
    tags = " ".join(f'<a class="tag" href="/tag/{_slug(x)}">{esc(x)}</a>' for x in site["tags"])
    foot = "".join(f'<li><a href="/{_slug(x)}">{esc(x)}</a></li>' for x in ui["footer"])
    crumb_section = esc(site["nav"][0])
    head = "".join(f"{x}\n" for x in (charset_tag, extra_head) if x)
    return f"""<!DOCTYPE html>
<html lang="{site['lang']}">
<head>
{head}<title>{title} | {esc(site['brand'])}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="canonical" href="https://{SITE_HOSTS[site_id]}{esc(path)}">
<link rel="stylesheet" href="/static/css/site.min.css?v=3.2.1">
<style>.cookie-consent{{position:fixed;bottom:0;left:0;right:0;background:#222;color:#fff;padding:1em}}.share a{{margin-right:.5em}}</style>
<script>window.dataLayer=window.dataLayer||[];function gtag(){{dataLayer.push(arguments);}}gtag('js',new Date());gtag('config','G-SAMPLE000');</script>
</head>
<body class="site-{site_id}">
<a class="skip-link" href="#content">{esc(ui['skip'])}</a>
<div id="cookie-banner" class="cookie-consent" role="dialog">
<p>{esc(ui['cookie'])}</p>
<button class="accept">{esc(ui['accept'])}</button> <button class="settings">{esc(ui['settings'])}</button>
</div>
<header class="site-header">
<a class="logo" href="/">{esc(site['brand'])}</a>
<nav class="main-nav"><ul>{nav}</ul></nav>
<form class="search" action="/search"><input type="search" name="q" placeholder="{esc(ui['search'])}"><button>{esc(ui['search'])}</button></form>
</header>
<div class="breadcrumbs"><a href="/">{esc(ui['home'])}</a> &rsaquo; <a href="/{_slug(site['nav'][0])}/">{crumb_section}</a></div>
<main id="content">
<article class="post">
{article.strip()}
<div class="share"><span>{esc(ui['share'])}:</span> <a href="#" class="fb">Facebook</a> <a href="#" class="x">X</a> <a href="#" class="wa">WhatsApp</a> <a href="#" class="mail">E-Mail</a></div>
<div class="tags"><span>{esc(ui['tags'])}:</span> {tags}</div>
</article>
<aside class="sidebar">
<div class="widget most-read"><h3>{esc(ui['most_read'])}</h3><ol>{side}</ol></div>
<div class="widget newsletter"><h3>{esc(ui['news_title'])}</h3><p>{esc(ui['news_text'])}</p>
<form action="/newsletter"><input type="email" placeholder="{esc(ui['email'])}"><button>{esc(ui['subscribe'])}</button></form></div>
<div class="widget ad"><a href="https://ads.example/click?slot=sidebar"><img src="/static/ads/banner-300x250.png" alt=""></a></div>
</aside>
</main>
<footer class="site-footer">
<ul>{foot}</ul>
<p>&copy; 2024 {esc(site['brand'])}. {esc(ui['rights'])}</p>
</footer>
<script src="/static/js/app.min.js?v=3.2.1" defer></script>
</body>
</html>
"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


# --------------------------------------------------------------------------------------------
# Page fragments and derived (near-duplicate) versions
# --------------------------------------------------------------------------------------------

def fragment(page_id: str) -> str:
    """The article fragment of one page: from samples/pages/, or derived by edits."""
    if page_id in DERIVED:
        base, edits = DERIVED[page_id]
        text = fragment(base)
        for old, new in edits:
            if text.count(old) != 1:
                raise ValueError(f"edit for {page_id} must match exactly once: {old[:40]!r}")
            text = text.replace(old, new)
        return text
    return (PAGES_DIR / f"{page_id}.html").read_text(encoding="utf-8")


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def page_text(page_id: str) -> str:
    """Plain text of an article fragment (what an ideal extractor returns, modulo whitespace)."""
    parser = _TextCollector()
    parser.feed(fragment(page_id))
    parser.close()
    return re.sub(r"\s+", " ", " ".join(parser.parts)).strip()


# A syndicated copy of the library story: new headline and byline, a reworded lead, a credit line.
# The edits are clustered (as editors do), so word-shingle similarity stays high.
DERIVED: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "en-library-syndicated": ("en-library", [
        ("Harbour Street library reopens after eighteen months of flood repairs",
         "Flood-hit Harbour Street library finally welcomes readers back"),
        ("By Martha Quill · 14 May 2024", "Martha Quill, Harbour Town Courier · 15 May 2024"),
        ("opened its doors again on Saturday morning, almost a year and a half after",
         "reopened on Saturday, nearly eighteen months after"),
        ("Opening hours are Tuesday to Saturday, nine until five, with a late evening on "
         "Thursdays.</p>",
         "Opening hours are Tuesday to Saturday, nine until five, with a late evening on "
         "Thursdays.</p>\n<p>This story first appeared in the Harbour Town Courier and is "
         "republished by Coast Wire with permission.</p>"),
    ]),
    # Chain A ~ B ~ C: B reworks the start of the review, C reworks the middle of B.
    "en-kettle-b": ("en-kettle", [
        ("Review: the Brightwell K2 gooseneck kettle",
         "Brightwell K2 review: an accurate gooseneck kettle that is worth the money"),
        ("Tested by Sam Oduya · 28 April 2024", "DealFinder team · updated 6 May 2024"),
        ("I have been making pour-over coffee every morning for about six years, and in that "
         "time I have gone through three kettles.",
         "We have brewed pour-over coffee most mornings for six years and worn out three "
         "kettles along the way."),
        ("buy something simpler and save the difference.</p>",
         "buy something simpler and save the difference.</p>\n<p>Check the price tracker "
         "below for today's best deal on the K2.</p>"),
    ]),
    "en-kettle-c": ("en-kettle-b", [
        ("DealFinder team · updated 6 May 2024", "Admin · Top 10 Kettles · 9 May 2024"),
        ("The base has a small dial that lets you choose any temperature between 40 and 100 "
         "degrees in single steps.",
         "A dial on the base sets the water anywhere from 40 to 100 degrees, one degree at a "
         "time."),
        ("The beep when the water reaches temperature is shrill and cannot be turned off.",
         "The alert tone is loud and there is no way to mute it."),
        ("Check the price tracker below for today's best deal on the K2.",
         "Click the button below to see the lowest price on our partner sites."),
    ]),
}

# --------------------------------------------------------------------------------------------
# Non-HTML bodies (built here, so no binary files live in the repo)
# --------------------------------------------------------------------------------------------

def _png(width: int = 16, height: int = 16) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + b"".join(bytes((x * 16, 90, 160 - y * 8)) for x in range(width))
                    for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows, 9))
            + chunk(b"IEND", b""))


def _pdf() -> bytes:
    stream = b"BT /F1 18 Tf 72 720 Td (Haushaltsplan 2024 - Entwurf) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += (b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(objects) + 1, xref))
    return bytes(out)


def _json_body() -> bytes:
    doc = {"town": "Harbour Town", "issued": "2024-05-18T06:00:00Z", "units": "metric",
           "forecast": [{"day": "Sat", "max": 16, "min": 9, "summary": "Showers, bright later"},
                        {"day": "Sun", "max": 18, "min": 10, "summary": "Sunny spells"},
                        {"day": "Mon", "max": 15, "min": 8, "summary": "Windy with rain"}],
           "tides": [{"high": "05:42", "low": "11:58"}, {"high": "18:07", "low": "00:21"}]}
    return json.dumps(doc, indent=2, sort_keys=True).encode("utf-8")


def _chunked(body: bytes, size: int = 1500) -> bytes:
    out = bytearray()
    for start in range(0, len(body), size):
        part = body[start:start + size]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
    return bytes(out + b"0\r\n\r\n")


# --------------------------------------------------------------------------------------------
# The fetches, in file order. Each becomes request + response (or revisit) + metadata,
# except the warcinfo record that starts the file.
# --------------------------------------------------------------------------------------------

def _f(fid, url, *, page=None, site=None, lang=None, kind, expect=None, **opts):
    return dict(id=fid, url=url, page=page, site=site, lang=lang, kind=kind,
                expect=dict(expect or {}), **opts)


LIB = "https://www.harbourcourier.example/news/2024/05/library-reopens"
RADWEGE = "https://www.elbufer-anzeiger.example/lokales/stadtrat-radwege-uferstrasse"
KETTLE_A = "https://www.gadgetbench.example/reviews/brightwell-k2-gooseneck-kettle"
KETTLE_B = "https://www.dealfinder.example/kitchen/brightwell-k2-review"
KETTLE_C = "https://best-kettles-top10.example/brightwell-k2-gooseneck-kettle-review/"
GARDEN = "https://www.harbourcourier.example/news/2024/05/school-kitchen-garden"
BAECKEREI = "https://www.elbufer-anzeiger.example/lokales/baeckerei-hansen-100-jahre"
TAP = "https://forum.harbourtalk.example/threads/kitchen-mixer-tap-dripping.4412/"
BUS = "https://forum.harbourtalk.example/threads/route-14-timetable-change.4420/"

PAGES: list[dict] = [
    # --- English: a news site whose pages share only their template ---------------------
    _f("en-library", LIB, page="en-library", site="harbourcourier", lang="en", kind="news",
       expect={"keep": True, "same-template-as": [GARDEN]}),
    _f("en-garden", GARDEN, page="en-garden", site="harbourcourier", lang="en", kind="news",
       expect={"keep": True, "same-template-as": [LIB]}),
    _f("en-library~utm", LIB + "?utm_source=newsletter&utm_medium=email&utm_campaign=weekly",
       page="en-library", same_bytes_as="en-library", site="harbourcourier", lang="en", kind="news",
       date="2024-05-19T08:12:40Z",
       expect={"exact-dup-of": LIB, "url-variant": "tracking query parameters"}),
    _f("en-soup", "https://kitchen-notes.example/recipes/barley-mushroom-soup", page="en-soup",
       site="kitchennotes", lang="en", kind="recipe", expect={"keep": True}),
    _f("en-tap", TAP, page="en-tap", site="fixitforum", lang="en", kind="forum",
       expect={"keep": True, "same-template-as": [BUS]}),
    _f("de-radwege", RADWEGE, page="de-radwege", site="elbufer", lang="de", kind="news",
       expect={"keep": True, "same-template-as": [BAECKEREI]}),
    _f("pl-most", "https://www.gazeta-nadwislanska.example/wiadomosci/remont-mostu-opozniony",
       page="pl-most", site="gazeta", lang="pl", kind="news", expect={"keep": True}),
    _f("en-library~slash", LIB + "/", page="en-library", same_bytes_as="en-library",
       site="harbourcourier", lang="en", kind="news", date="2024-05-20T14:03:11Z",
       expect={"exact-dup-of": LIB, "url-variant": "trailing slash"}),
    _f("es-viaje", "https://cuadernodeviaje.example/2024/04/fin-de-semana-albarracin/",
       page="es-viaje", site="cuaderno", lang="es", kind="travel", charset="utf-8",
       declare="none", expect={"keep": True, "charset-case": "utf-8, no declaration anywhere"}),
    _f("zh-travel", "https://www.lvxing-biji.example/youji/gu-zhen-san-ri.html",
       page="zh-travel", site="lvxing", lang="zh", kind="travel", expect={"keep": True}),
    _f("en-kettle-a", KETTLE_A, page="en-kettle", site="gadgetbench", lang="en", kind="review",
       expect={"keep": True, "near-dup-chain": [KETTLE_A, KETTLE_B, KETTLE_C]}),
    _f("de-baeckerei", BAECKEREI, page="de-baeckerei", site="elbufer", lang="de", kind="news",
       expect={"keep": True, "same-template-as": [RADWEGE]}),
    _f("en-pii", "https://www.harbourrowing.example/regatta/volunteers", page="en-pii",
       site="rowingclub", lang="en", kind="notice",
       expect={"keep": True, "pii": {
           "email": ["hannah.okafor@harbourrowing.example", "juergen.weiss@ruderclub-kiel.example",
                     "a.zielinska@wioslarze.example", "regatta@harbourrowing.example"],
           # (212) 555-0123 has no country code: finding it needs a US region hint.
           "phone": ["(212) 555-0123", "+49 30 1234 5678", "+48 512 345 678",
                     "+44 20 7946 0123"],
           "credit_card": ["4111 1111 1111 1111"],
           "iban": ["DE89 3704 0044 0532 0130 00"],
           "ipv4": ["81.2.69.142"]},
           "not-pii": {
           "version": ["10.2.3.4-beta"], "order_number_bad_luhn": ["4111-2024-0622-7788"],
           "ipv4_documentation_range": ["203.0.113.57"],
           "card_like_bad_luhn": ["1234 5678 9012 3456"],
           "date": ["22 June 2024", "2024.06.22", "12/26"], "time": ["14.30.00"]}}),
    _f("ja-nikujaga", "https://okazu-nikki.example/washoku/nikujaga.html", page="ja-nikujaga",
       site="okazu", lang="ja", kind="recipe", charset="shift_jis", declare="http-equiv",
       expect={"keep": True,
               "charset-case": "Shift_JIS, declared only in <meta http-equiv=Content-Type>"}),
    _f("en-bus", BUS, page="en-bus", site="fixitforum", lang="en", kind="forum",
       expect={"keep": True, "toxic": "mild", "same-template-as": [TAP]}),
    _f("de-radwege~mobile", RADWEGE.replace("://www.", "://m."),
       page="de-radwege", site="elbufer", lang="de", kind="news", same_bytes_as="de-radwege",
       expect={"exact-dup-of": RADWEGE, "url-variant": "mobile host, byte-identical HTML"}),
    _f("fr-tarte", "https://lacuisinedemargot.example/recettes/tarte-poireaux-chevre",
       page="fr-tarte", site="margot", lang="fr", kind="recipe",
       http_extra=[("X-Robots-Tag", "noai, noimageai")],
       expect={"keep": True, "consent-optout": "X-Robots-Tag: noai HTTP header"}),
    _f("en-library-syndicated",
       "https://www.coastwire.example/regions/south/harbour-street-library-reopens",
       page="en-library-syndicated", site="coastwire", lang="en", kind="news",
       expect={"near-dup-of": LIB}),
    _f("pl-pierogi", "https://kuchnia-na-zakrecie.example/przepisy/pierogi-z-kapusta-i-grzybami",
       page="pl-pierogi", site="kuchnia", lang="pl", kind="recipe", charset="iso-8859-2",
       declare="http",
       expect={"keep": True, "charset-case": "ISO-8859-2, declared only in the HTTP header"}),
    _f("en-spam", "https://cheap-flights-best-deals.example/cheap-flights-cheap-flights.html",
       page="en-spam", site="cheapflights", lang="en", kind="seo-spam",
       expect={"low-quality": "keyword stuffing"}),
    _f("de-wanderung", "https://www.fernweh-notizen.example/wandern/drei-tage-kammweg",
       page="de-wanderung", site="fernweh", lang="de", kind="travel", charset="windows-1252",
       declare="meta",
       expect={"keep": True,
               "charset-case": "windows-1252, declared only in <meta charset> "
                               "(has \u20ac, \u00e4, \u00e9)"}),
    _f("en-dredging", "https://www.harbourcourier.example/news/2024/05/harbour-dredging-june",
       page="en-dredging", site="harbourcourier", lang="en", kind="news", corrupt=True,
       expect={"malformed": "response record's gzip member is corrupt (bytes overwritten "
                            "mid-stream); dead-letter it, keep reading after it"}),
    _f("en-kettle-b", KETTLE_B, page="en-kettle-b", site="dealfinder", lang="en", kind="review",
       expect={"near-dup-of": KETTLE_A, "near-dup-chain": [KETTLE_A, KETTLE_B, KETTLE_C]}),
    _f("en-heavy", "https://forum.harbourtalk.example/threads/this-printer.4431/",
       page="en-heavy", site="fixitforum", lang="en", kind="forum",
       expect={"toxic": "heavy"}),
    _f("es-molinillo", "https://www.cafeteros.example/analisis/molinillo-moltura-m3",
       page="es-molinillo", site="cafeteros", lang="es", kind="review",
       extra_head='<meta name="tdm-reservation" content="1">\n'
                  '<link rel="tdm-policy" href="https://www.cafeteros.example/tdm-policy.json">',
       expect={"keep": True, "consent-optout": '<meta name="tdm-reservation" content="1">'}),
    _f("en-library~http", LIB.replace("https://", "http://"), page="en-library",
       same_bytes_as="en-library", site="harbourcourier", lang="en", kind="news",
       date="2024-05-21T03:44:09Z",
       expect={"exact-dup-of": LIB, "url-variant": "http instead of https"}),
    _f("pl-dzialka", "https://forum.dzialkowcy.example/watek/mszyce-na-porzeczkach-1183",
       page="pl-dzialka", site="ogrodnicy", lang="pl", kind="forum", expect={"keep": True}),
    _f("en-lorem", "https://demo.themeforge.example/2024/01/hello-world/", page="en-lorem",
       site="themeforge", lang="la", kind="placeholder",
       expect={"low-quality": "lorem ipsum placeholder text"}),
    _f("zh-tomato", "https://yangtai-huayuan.example/shucai/fanqie-quan-gonglue",
       page="zh-tomato", site="yangtai", lang="zh", kind="how-to", transfer="chunked",
       expect={"keep": True, "http-case": "Transfer-Encoding: chunked body"}),
    _f("de-balkon", "https://www.heimwerker-ratgeber.example/energie/balkonkraftwerk-anmelden",
       page="de-balkon", site="heimwerker", lang="de", kind="how-to",
       extra_head='<meta name="robots" content="noai, noimageai">',
       expect={"keep": True, "consent-optout": '<meta name="robots" content="noai, noimageai">'}),
    _f("en-kettle-c", KETTLE_C, page="en-kettle-c", site="topkettles", lang="en",
       kind="review", expect={"near-dup-of": KETTLE_B,
                              "near-dup-chain": [KETTLE_A, KETTLE_B, KETTLE_C]}),
    _f("en-links", "https://www.harbourcourier.example/useful-links", page="en-links",
       site="harbourcourier", lang="en", kind="link-list",
       expect={"low-quality": "mostly links and very short lines"}),
    _f("fr-fete", "https://www.lepetitriverain.example/communes/saint-aubin-fete-du-pain",
       page="fr-fete", site="riverain", lang="fr", kind="news", transfer="gzip",
       expect={"keep": True, "http-case": "Content-Encoding: gzip body"}),
    _f("de-radwege~cms", "https://www.elbufer-anzeiger.example/index.php?id=4711&type=article",
       page="de-radwege", site="elbufer", lang="de", kind="news", same_bytes_as="de-radwege",
       date="2024-05-22T10:15:00Z",
       expect={"exact-dup-of": RADWEGE, "url-variant": "old CMS id URL, byte-identical HTML"}),
    _f("ja-furuhon", "https://sanpo-note.example/entry/2024/05/03/minato-furuhon",
       page="ja-furuhon", site="sanpo", lang="ja", kind="blog", expect={"keep": True}),
    _f("en-short", "https://www.harbourcourier.example/gallery/lifeboat-day", page="en-short",
       site="harbourcourier", lang="en", kind="gallery",
       expect={"low-quality": "fewer than 50 words of main text"}),
    _f("en-library~host", LIB.replace("www.harbourcourier.example", "WWW.HarbourCourier.EXAMPLE")
       + "#comments",
       page="en-library", same_bytes_as="en-library", site="harbourcourier", lang="en", kind="news",
       date="2024-05-23T19:30:52Z",
       expect={"exact-dup-of": LIB, "url-variant": "upper-case host and #fragment"}),
    _f("en-bread", "https://kitchen-notes.example/diary/thirty-days-of-sourdough",
       page="en-bread", site="kitchennotes", lang="en", kind="blog", truncate_at=0.6,
       expect={"truncated": "length"}),
    # --- non-HTML, non-200, revisit ---------------------------------------------------------
    _f("pdf", "https://www.elbufer-anzeiger.example/media/haushaltsplan-2024-entwurf.pdf",
       kind="pdf", mime="application/pdf", expect={"not-html": "application/pdf"}),
    _f("json", "https://api.harbourcourier.example/v1/forecast?town=harbour-town",
       kind="json", mime="application/json", expect={"not-html": "application/json"}),
    _f("png", "https://www.harbourcourier.example/static/img/logo-16.png", kind="image",
       mime="image/png", expect={"not-html": "image/png"}),
    _f("en-404", "https://www.harbourcourier.example/news/2023/11/storm-surge-live",
       page="en-404", site="harbourcourier", lang="en", kind="error-page", status=404,
       expect={"http-status": 404}),
    _f("redirect", "http://kitchen-notes.example/barley-soup", kind="redirect", status=301,
       location="https://kitchen-notes.example/recipes/barley-mushroom-soup",
       expect={"http-status": 301}),
    _f("de-radwege~revisit", RADWEGE, page="de-radwege", site="elbufer", lang="de", kind="news",
       record="revisit", revisit_of="de-radwege", same_bytes_as="de-radwege",
       date="2024-05-30T07:01:12Z",
       expect={"revisit": RADWEGE}),
]

REASONS = {200: "OK", 301: "Moved Permanently", 404: "Not Found"}


# --------------------------------------------------------------------------------------------
# HTTP bodies and headers
# --------------------------------------------------------------------------------------------

def _page_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _html_body(entry: dict) -> tuple[bytes, str]:
    """(encoded HTML, Content-Type header value) for one HTML fetch."""
    charset = entry.get("charset", "utf-8")
    declare = entry.get("declare", "http+meta")
    label = {"shift_jis": "Shift_JIS"}.get(charset, charset)
    tag = {"http+meta": '<meta charset="utf-8">',
           "meta": f'<meta charset="{charset}">',
           "http-equiv": f'<meta http-equiv="Content-Type" content="text/html; charset={label}">',
           "http": "", "none": ""}[declare]
    page = render_page(entry["site"], fragment(entry["page"]), charset_tag=tag,
                       extra_head=entry.get("extra_head", ""),
                       path=urlsplit(entry["url"]).path)
    # The article itself must encode losslessly; boilerplate may fall back to character
    # references (a real site on a legacy charset does the same with its footer's symbols).
    fragment(entry["page"]).encode(charset)
    body = page.encode(charset, errors="xmlcharrefreplace")
    if declare in ("http+meta", "http"):
        ctype = f"text/html; charset={charset.upper() if charset != 'utf-8' else 'UTF-8'}"
    else:
        ctype = "text/html"
    return body, ctype


def _http_date(warc_date: str) -> str:
    return format_datetime(datetime.strptime(warc_date, "%Y-%m-%dT%H:%M:%SZ")
                           .replace(tzinfo=timezone.utc), usegmt=True)


def _response(entry: dict, date: str, html_cache: dict) -> tuple[StatusAndHeaders, bytes, str]:
    """(HTTP headers, raw payload as stored, identified payload type)."""
    status = entry.get("status", 200)
    server = SITES[entry["site"]]["server"] if entry.get("site") else "nginx"
    headers = [("Date", _http_date(date)), ("Server", server)]
    if entry["kind"] == "redirect":
        body = (b'<html><head><title>301 Moved Permanently</title></head><body>'
                b'<h1>Moved Permanently</h1><p>The document has moved <a href="'
                + entry["location"].encode() + b'">here</a>.</p></body></html>\n')
        headers += [("Location", entry["location"]),
                    ("Content-Type", "text/html; charset=iso-8859-1")]
        ident = "text/html"
    elif entry.get("mime") == "application/pdf":
        body, ident = _pdf(), "application/pdf"
        headers += [("Content-Type", "application/pdf"),
                    ("Last-Modified", "Tue, 30 Apr 2024 09:00:00 GMT")]
    elif entry.get("mime") == "application/json":
        body, ident = _json_body(), "application/json"
        headers += [("Content-Type", "application/json"), ("Cache-Control", "max-age=300")]
    elif entry.get("mime") == "image/png":
        body, ident = _png(), "image/png"
        headers += [("Content-Type", "image/png"), ("Cache-Control", "max-age=31536000")]
    else:
        source = entry.get("same_bytes_as") or entry["id"]
        if source not in html_cache:
            html_cache[source] = _html_body(PAGE_BY_ID[source])
        body, ctype = html_cache[source]
        headers += [("Content-Type", ctype), ("Vary", "Accept-Encoding"),
                    ("Cache-Control", "max-age=600")]
        headers += entry.get("http_extra", [])
        ident = "text/html"
    transfer = entry.get("transfer")
    if transfer == "gzip":
        body = gzip.compress(body, compresslevel=9, mtime=0)
        headers += [("Content-Encoding", "gzip"), ("Content-Length", str(len(body)))]
    elif transfer == "chunked":
        body = _chunked(body)
        headers += [("Transfer-Encoding", "chunked")]
    elif "truncate_at" in entry:
        headers += [("Content-Length", str(len(body)))]
        body = body[:int(len(body) * entry["truncate_at"])]
    else:
        headers += [("Content-Length", str(len(body)))]
    headers += [("Connection", "close")]
    http = StatusAndHeaders(f"{status} {REASONS[status]}", headers, protocol="HTTP/1.1")
    return http, body, ident


# --------------------------------------------------------------------------------------------
# WARC writing
# --------------------------------------------------------------------------------------------

def _record_id(kind: str, url: str, date: str) -> str:
    return f"<urn:uuid:{uuid.uuid5(ID_NAMESPACE, f'{kind} {url} {date}')}>"


def _ip(url: str) -> str:
    # Documentation ranges only (RFC 5737), stable per host.
    host = urlsplit(url).hostname or ""
    digest = hashlib.sha1(host.encode()).digest()
    return f"198.51.100.{1 + digest[0] % 250}"


def _dates() -> dict[str, str]:
    out = {}
    for index, entry in enumerate(PAGES):
        default = CRAWL_START + timedelta(seconds=47 * index + (index * index) % 13)
        out[entry["id"]] = entry.get("date") or default.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


PAGE_BY_ID = {entry["id"]: entry for entry in PAGES}

CLD2_NAMES = {"en": "ENGLISH", "de": "GERMAN", "pl": "POLISH", "es": "SPANISH", "fr": "FRENCH",
              "zh": "Chinese", "ja": "Japanese", "la": "LATIN"}


def _write(writer: WARCWriter, out: io.BytesIO, record) -> tuple[int, int]:
    start = out.tell()
    writer.write_record(record)
    end = out.tell()
    # zlib writes its build's OS code into the gzip header (3 on Linux, 19 on macOS); pin it so
    # the file does not depend on where it was generated. The header byte is not checksummed.
    out.seek(start + 9)
    out.write(b"\x03")
    out.seek(end)
    return start, end


def build() -> tuple[bytes, dict[str, dict]]:
    """Build the WARC in memory. Returns (file bytes, {fetch id: layout info})."""
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True, warc_version="1.0")
    dates = _dates()
    info_date = CRAWL_START.strftime("%Y-%m-%dT%H:%M:%SZ")
    info_id = _record_id("warcinfo", WARC_FILENAME, info_date)
    fields = ("isPartOf: CC-MAIN-SAMPLE\r\npublisher: corpus-pipeline test fixtures\r\n"
              "description: Synthetic sample shaped like a Common Crawl WARC file; every page "
              "is invented and every host is under the reserved .example TLD\r\n"
              "operator: corpus-pipeline maintainers\r\n"
              "software: samples/make_sample.py (warcio)\r\n"
              "format: WARC File Format 1.0\r\n"
              "conformsTo: https://iipc.github.io/warc-specifications/specifications/"
              "warc-format/warc-1.0/\r\n"
              ).encode("utf-8")
    warcinfo = writer.create_warc_record(
        "", "warcinfo", payload=io.BytesIO(fields), length=len(fields),
        warc_headers_dict={"WARC-Type": "warcinfo", "WARC-Date": info_date,
                           "WARC-Record-ID": info_id, "Content-Length": "0",
                           "Content-Type": "application/warc-fields",
                           "WARC-Filename": WARC_FILENAME})
    layout: dict[str, dict] = {"warcinfo": {"offset": 0, "record_id": info_id}}
    _write(writer, out, warcinfo)

    html_cache: dict[str, tuple[bytes, str]] = {}
    payload_digests: dict[str, str] = {}
    corrupt_span = None
    for entry in PAGES:
        url, date = entry["url"], dates[entry["id"]]
        ip = _ip(url)
        parts = urlsplit(url)
        req_id = _record_id("request", url, date)
        resp_kind = entry.get("record", "response")
        resp_id = _record_id(resp_kind, url, date)
        meta_id = _record_id("metadata", url, date)

        req_http = StatusAndHeaders(
            f"GET {_page_path(url) or '/'} HTTP/1.1",
            [("User-Agent", "CCBot/2.0 (https://commoncrawl.org/faq/)"),
             ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
             ("Accept-Language", "en-US,en;q=0.5"), ("Accept-Encoding", "br,gzip"),
             ("Host", parts.netloc), ("Connection", "Keep-Alive")],
            is_http_request=True)
        request = writer.create_warc_record(
            url, "request", http_headers=req_http,
            warc_headers_dict={"WARC-Type": "request", "WARC-Date": date,
                               "WARC-Record-ID": req_id, "Content-Length": "0",
                               "Content-Type": "application/http; msgtype=request",
                               "WARC-Warcinfo-ID": info_id, "WARC-IP-Address": ip,
                               "WARC-Target-URI": url})
        _write(writer, out, request)

        http, body, ident = _response(entry, date, html_cache)
        warc_headers = {"WARC-Type": resp_kind, "WARC-Date": date, "WARC-Record-ID": resp_id,
                        "Content-Length": "0",
                        "Content-Type": "application/http; msgtype=response",
                        "WARC-Warcinfo-ID": info_id, "WARC-Concurrent-To": req_id,
                        "WARC-IP-Address": ip, "WARC-Target-URI": url}
        if resp_kind == "revisit":
            original = PAGE_BY_ID[entry["revisit_of"]]
            warc_headers.update({
                "WARC-Profile": writer.REVISIT_PROFILE,
                "WARC-Refers-To": layout[original["id"]]["record_id"],
                "WARC-Refers-To-Target-URI": original["url"],
                "WARC-Refers-To-Date": dates[original["id"]],
                "WARC-Payload-Digest": payload_digests[original["id"]]})
            response = writer.create_warc_record(url, "revisit", http_headers=http,
                                                 warc_headers_dict=warc_headers)
        else:
            if "truncate_at" in entry:
                warc_headers["WARC-Truncated"] = "length"
            response = writer.create_warc_record(url, "response", payload=io.BytesIO(body),
                                                 length=len(body), http_headers=http,
                                                 warc_headers_dict=warc_headers)
        # Digests first, then the identified type, so headers follow Common Crawl's order.
        writer.ensure_digest(response, block=True, payload=True)
        if resp_kind == "response":
            response.rec_headers.add_header("WARC-Identified-Payload-Type", ident)
        start, end = _write(writer, out, response)
        payload_digests[entry["id"]] = response.rec_headers.get_header("WARC-Payload-Digest")
        layout[entry["id"]] = {"offset": start, "length": end - start, "record_id": resp_id,
                               "request_id": req_id, "metadata_id": meta_id, "date": date}
        if entry.get("corrupt"):
            corrupt_span = (start, end)

        meta_lines = [f"fetchTimeMs: {50 + int(hashlib.sha1(url.encode()).hexdigest(), 16) % 900}"]
        if ident == "text/html" and entry.get("lang"):
            charset = entry.get("charset", "utf-8").upper()
            meta_lines.append(f"charset-detected: {charset}")
            lang = entry["lang"]
            meta_lines.append("languages-cld2: " + json.dumps(
                {"reliable": True, "text-bytes": len(page_text(entry["page"]).encode()),
                 "languages": [{"code": lang, "name": CLD2_NAMES[lang], "text-covered": 0.97}]},
                separators=(",", ":")))
        meta_body = ("\r\n".join(meta_lines) + "\r\n").encode("utf-8")
        metadata = writer.create_warc_record(
            url, "metadata", payload=io.BytesIO(meta_body), length=len(meta_body),
            warc_headers_dict={"WARC-Type": "metadata", "WARC-Date": date,
                               "WARC-Record-ID": meta_id, "Content-Length": "0",
                               "Content-Type": "application/warc-fields",
                               "WARC-Warcinfo-ID": info_id, "WARC-Concurrent-To": resp_id,
                               "WARC-Target-URI": url})
        _write(writer, out, metadata)

    data = bytearray(out.getvalue())
    if corrupt_span is not None:
        start, end = corrupt_span
        # Keep the gzip header and the first half of the Deflate stream; overwrite 24 bytes in
        # the middle, as a bad disk block or a botched partial download would.
        middle = start + (end - start) // 2
        data[middle:middle + 24] = b"\xde\xad\xbe\xef" * 6
    return bytes(data), layout


@functools.lru_cache(maxsize=1)
def _built() -> tuple[bytes, dict]:
    return build()


def manifest() -> list[dict]:
    """One dict per fetch, in file order.

    Keys: id, url, page (article fragment id or None), site, lang (ISO 639-1, "la" for lorem
    ipsum, None for non-text), kind, record ("response" or "revisit"), status, mime, charset,
    declare (where the charset is declared: "http+meta", "http", "meta", "http-equiv", "none"),
    transfer (None, "gzip" or "chunked"), expect (what a correct pipeline does with it; keys:
    keep, exact-dup-of, url-variant, near-dup-of, near-dup-chain, same-template-as, pii,
    not-pii, toxic, low-quality, consent-optout, charset-case, http-case, not-html,
    http-status, truncated, revisit, malformed), offset/length (of the response or revisit
    record's gzip member in sample.warc.gz), record_id, request_id, metadata_id, date.
    """
    _, layout = _built()
    rows = []
    for entry in PAGES:
        row = {key: copy.deepcopy(entry.get(key)) for key in ("id", "url", "page", "site", "lang",
                                                              "kind")}
        row.update(record=entry.get("record", "response"), status=entry.get("status", 200),
                   mime=entry.get("mime", "text/html"),
                   charset=entry.get("charset", "utf-8") if entry.get("page") else None,
                   declare=entry.get("declare", "http+meta") if entry.get("page") else None,
                   transfer=entry.get("transfer"), expect=copy.deepcopy(entry["expect"]))
        row.update(layout[entry["id"]])
        rows.append(row)
    return rows


def readme_table() -> str:
    """The markdown table of fetches used in samples/README.md (URLs in cells shown as ids)."""
    rows = manifest()
    ids: dict[str, str] = {}
    for row in rows:
        ids.setdefault(row["url"], row["id"])

    def cell(value) -> str:
        if isinstance(value, dict):
            return ", ".join(sorted(value))
        if isinstance(value, list):
            return " ~ ".join(cell(v) for v in value)
        text = ids.get(value, str(value)) if isinstance(value, str) else str(value)
        return f"`{text}`" if ("<" in text or text in ids.values()) else text.replace("|", "/")

    lines = ["| # | id | lang | kind | response offset | expected behaviour | URL |",
             "|---|---|---|---|---|---|---|"]
    for number, row in enumerate(rows, start=1):
        expect = "; ".join(key if value is True else f"{key}: {cell(value)}"
                           for key, value in row["expect"].items() if key != "not-pii")
        lines.append(f"| {number} | {row['id']} | {row['lang'] or '-'} | {row['kind']} | "
                     f"{row['offset']} | {expect} | `{row['url']}` |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .warc.gz path")
    parser.add_argument("--manifest", action="store_true", help="print the manifest as JSON")
    parser.add_argument("--readme-table", action="store_true",
                        help="print the markdown table for samples/README.md")
    args = parser.parse_args(argv)
    if args.manifest:
        print(json.dumps(manifest(), indent=2, ensure_ascii=False))
        return 0
    if args.readme_table:
        print(readme_table())
        return 0
    data, _ = _built()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data)} bytes, {len(PAGES)} fetches)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
