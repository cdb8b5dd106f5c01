"""Do no harm: every config in configs/ on clean photos and known degradations of them.

Usage (from the repository root)::

    python benchmarks/quality.py                       # every set, every config, ~8-10 min on 2 cores
    python benchmarks/quality.py --set tuning --configs configs/default.yaml /tmp/candidate.yaml
    python benchmarks/quality.py --out benchmarks/results/quality-after   # -> .md and .json
    python benchmarks/quality.py --sheets /tmp/sheets   # a contact sheet per config (imgenh preview)

Clean photos come from scikit-image's ``skimage.data``, OpenCV's sample data (``apt-get install
opencv-doc``) and Debian's desktop backgrounds (``apt-get install mate-backgrounds
lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 plasma-workspace-wallpapers``) and elementary OS's
wallpapers (``git clone https://github.com/elementary/wallpapers``, then set ELEMENTARY_WALLPAPERS to
its ``backgrounds`` folder; the sources of sets F, G and H are named at HELD_OUT_F, HELD_OUT_G and
HELD_OUT_H): 17 tuning photos and eight held-out sets of 10, 12, 14, 12, 9, 22, 12 and 15, shrunk
to at most 0.4 MP. Photos whose EXIF records the exposure are run with it. Each is
degraded in known ways (``DEGRADATIONS``), saved as a JPEG (quality 92) as a camera would, then
run through each pipeline in memory and written with the pipeline's own output settings (JPEG
at its quality, or lossless PNG). The score is the mean CIEDE2000 (``skimage.color``) between
the result and the clean original; lower is better. Two baselines: ``nothing`` (the degraded
JPEG itself, so the ``clean`` row is the cost of one re-encode) and ``magick``, the ImageMagick
one-liner ``convert IN -auto-level -auto-gamma OUT`` (``/usr/bin/convert``).

The photos are split by name into a tuning set (retune configs on it only) and held-out sets
(measure, never tune; a set once used to diagnose is replaced by a fresh one, see HELD_OUT_E to
HELD_OUT_H). Per-image quality figures (``imgenh.quality.figures``: noise, clipping,
colourfulness, ...) go into the JSON, and their means into the Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from joblib import Parallel, delayed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imgenh import load_pipeline  # noqa: E402
from imgenh.io import CameraExposure, camera_exposure  # noqa: E402
from imgenh.quality import figures  # noqa: E402

# Fixed by name: tune on TUNING only; HELD_OUT is measured after tuning, never tuned on.
# chelsea, motorcycle and retina were the held-out set until 2026-12-02, when a hold-back rule was
# chosen after looking at the cat: they were seen, so they now belong to the tuning set.
# On 2026-12-02 (late) ten more OpenCV sample photos joined the tuning set, so a rule is not chosen on
# seven photos; none of them is, or shows the scene of, a held-out photo (aero3, leuvenB and
# ela_modified are left out for that reason).
SKIMAGE_TUNING = ("astronaut", "coffee", "rocket", "immunohistochemistry", "chelsea", "motorcycle", "retina")
OPENCV_TUNING = (
    "aloeL",
    "apple",
    "baboon",
    "board",
    "chicky_512",
    "graf1",
    "licenseplate_motion",
    "orange",
    "rubberwhale1",
    "stuff",
)
TUNING = SKIMAGE_TUNING + OPENCV_TUNING
# Photos from OpenCV's sample data (Debian: `apt-get install opencv-doc`), never looked at while
# tuning: landscape, architecture, a low-key still life, a high-key product shot, nature, sport.
HELD_OUT = (
    "aero1",
    "building",
    "butterfly",
    "ela_original",
    "fruits",
    "home",
    "leuvenA",
    "messi5",
    "smarties",
    "squirrel_cls",
)
# A second held-out set, added on 2026-12-03 when the first had been measured five times: the
# nature photos of Debian's mate-backgrounds (`apt-get install mate-backgrounds`; 1.3-5 MP JPEGs:
# macro, foliage, flowers, sky, sea), likewise never looked at while tuning. Scenes dominated by one
# colour, which a white balance must leave alone.
HELD_OUT_B = (
    "Aqua",
    "Blinds",
    "Dune",
    "FreshFlower",
    "Garden",
    "GreenMeadow",
    "LadyBird",
    "RainDrops",
    "Storm",
    "TwoWings",
    "Wood",
    "YellowFlower",
)
# On 2026-12-03 (session 21) set B was used to diagnose two losses per step (the white balance
# and the stretch on its soft, one-colour scenes), so it is no longer unseen. Set C took its place:
# the photos of Ubuntu Touch's wallpapers (`apt-get install lomiri-wallpapers-16.04
# lomiri-wallpapers-20.04`; 2-26 MP JPEGs: landscapes, a backlit sunset and meadow, a warm
# interior, macro, a bird, still lifes; the drawn wallpapers are left out), never looked at while
# tuning.
HELD_OUT_C = (
    "Bridge_by_Sander_Klootwijk",
    "Dragonfly_by_Bolly",
    "Picture_0B_by_freespace",
    "Picture_1A_by_freespace",
    "Wine_by_Jakkub_Mede",
    "aitzgorri_by_Aitzol_Berasategi",
    "free_by_Peter_Nerlich",
    "friends_by_Aitzol_Berasategi",
    "greentock_by_Peter_Nerlich",
    "life_by_Aitzol_Berasategi",
    "picosdeeuropa_by_Aitzol_Berasategi",
    "seeding_by_Clements_Engelhardt",
    "sunset_by_Aitzol_Berasategi",
    "Kleiber_by_Lukas_Baubkus",
)
# On 2026-12-03 (session 22) set C was diagnosed per photo, so set D took its place: the photos of
# KDE Plasma's wallpapers (`apt-get install plasma-workspace-wallpapers`; 2.5-15 MP JPEGs: a jetty in
# fog, boats at dusk, a lake after sunset, a forest path, a kite in blue sky, autumn leaves, a beach
# from above, cups, near-monochrome architecture; the drawn wallpapers are left out), never looked
# at while tuning.
HELD_OUT_D = (
    "BytheWater",
    "ColdRipple",
    "ColorfulCups",
    "DarkestHour",
    "EveningGlow",
    "FallenLeaf",
    "Grey",
    "Kite",
    "OneStandsOut",
    "Path",
    "Volna",
    "summer_1am",
)
# On 2026-12-03 (session 23) set D was diagnosed per photo (DarkestHour, a blue-hour fog read as an
# under-exposure), so set E took its place: the photos of elementary OS's wallpapers (`git clone
# https://github.com/elementary/wallpapers`, backgrounds/ at commit f28b861, tag 8.0.0's photos;
# 5-24 MP JPEGs whose EXIF holds no exposure), never looked at while tuning.
HELD_OUT_E = (
    "Ashim DSilva",
    "Martin Adams",
    "Morskie Oko",
    "Mr. Lee",
    "Photo by SpaceX",
    "Snow-Capped Mountain",
    "Sunset by the Pier",
    "Tj Holowaychuk",
    "Viktor Forgacs",
)
# On 2026-12-03 (session 24) set E was diagnosed per photo (Martin Adams' pastel petals and Morskie
# Oko's low-key fern, stretched as if veiled), so set F took its place, never looked at while
# tuning: the photos of Budgie's backgrounds (`git clone
# https://github.com/BuddiesOfBudgie/budgie-backgrounds`, backgrounds/ at commit 8206742; 8 MP JPEGs,
# the abstract spiral, the rendered Saturn and the two drawn "midnight" scenes left out) and the
# photos that elementary OS shipped before 8.0 and dropped (`git -C wallpapers show
# TAG:PATH > FOLDER/NAME.jpg` for each of F_ELEMENTARY_OLD's tag and path; 4-24 MP).
HELD_OUT_F_BUDGIE = (
    "beacon-street-sunset",
    "blue-periwinkle",
    "canyon-wren",
    "casa-mila",
    "extreme-desert-hike",
    "high-trestle-trail",
    "lake-sherburne",
    "oakland-zoo-otters",
    "ocean-waves",
    "perched-osprey",
    "piazza-gae-aulenti",
    "roman-colosseum",
    "singaporean-cityscape",
    "tea-gardens",
    "the-spices-of-life",
)
F_ELEMENTARY_OLD = {
    "Carmine De Fazio": "5.5.0:backgrounds/Carmine De Fazio.jpg",
    "Jay Ruzesky": "5.2:Jay Ruzesky.jpg",
    "Jonas Nilsson Lee": "5.5.0:backgrounds/Jonas Nilsson Lee.jpg",
    "Julia Craice": "7.0.0:backgrounds/Julia Craice.jpg",
    "Pablo Garcia Saldana": "5.5.0:backgrounds/Pablo Garcia Saldana.jpg",
    "Rob Bye": "5.5.0:backgrounds/Rob Bye.jpg",
    "Ryan Schroeder": "5.5.0:backgrounds/Ryan Schroeder.jpg",
}
HELD_OUT_F = HELD_OUT_F_BUDGIE + tuple(F_ELEMENTARY_OLD)
# On 2026-12-03 (session 24) set F was judged and then diagnosed per photo (a matte forest read
# as a veil, a sunset's warmth read as a cast), so set G took its place, never looked at while
# tuning: the photos of Pop!_OS's wallpapers (`git clone https://github.com/pop-os/wallpapers`,
# original/ at commit 03a25a1; 4-24 MP JPEGs; the two drawn ones and the three of Earth from orbit
# left out).
HELD_OUT_G = (
    "ahmadreza-sajadi-10140-edit",
    "galen-crout-175291",
    "jad-limcaco-183877",
    "jake-hills-36605",
    "jared-evans-119758",
    "kait-herzog-8242",
    "ng-32703",
    "samuel-zeller-337041",
    "sean-afnan-244576",
    "sebastien-gabriel-232361",
    "spacex-81773",
    "tony-webster-97532",
)
# On 2026-12-03 (session 26) set G was used, so set H took its place, never looked at while tuning:
# the photos of Ubuntu MATE's artwork (`git clone https://github.com/ubuntu-mate/ubuntu-mate-artwork`;
# tag 24.10.0 = 7d8984c, and the kudu, dropped since, at 778d944; 3.7-12 MP JPEGs, CC0/CC-BY-SA-4.0:
# a green ridge and road, a lone tree, the Milky Way, a lemur, a kudu, a hippo, a blue crayfish; the
# logo'd, drawn and AI-made ones, the Earth from orbit and photos of earlier sets' scenes left out) and
# of Ubuntu Cinnamon's wallpapers (`git clone https://github.com/ubuntucinnamon/ubuntucinnamon-wallpapers`
# at 5366600; 8-11 MP JPEGs, CC0/CC-BY-SA: a concert, Red Square at night, a street in fog, a park
# with people, a station hall, an indoor zoo display, cinnamon sticks, Niagara Falls). Copy each with
# `git -C CLONE show 'REV:PATH' > FOLDER/NAME.jpg` (H_UBUNTU_MATE / H_UBUNTU_CINNAMON give REV:PATH).
H_UBUNTU_MATE = {
    "andrew-ridley-54228": "24.10.0:usr/share/backgrounds/ubuntu-mate-photos/andrew-ridley-54228.jpg",
    "blue-lobster": "24.10.0:usr/share/backgrounds/ubuntu-mate-lunar/blue-lobster.jpg",
    "hans-jurgen-mager-indri": "24.10.0:usr/share/backgrounds/ubuntu-mate-impish/hans-jurgen-mager-indri.jpg",
    "jamie-muller-kudu": "778d944c06a6a1f2955401c6371ed6c39c0f03bd:"
    "usr/share/backgrounds/ubuntu-mate-kinetic/jamie-muller-kudu.jpg",
    "joe-were-unsplash-hippo": "24.10.0:usr/share/backgrounds/ubuntu-mate-hirsute/joe-were-unsplash-hippo.jpg",
    "johann-siemens-591": "24.10.0:usr/share/backgrounds/ubuntu-mate-photos/johann-siemens-591.jpg",
    "kristopher-roller-110203": "24.10.0:usr/share/backgrounds/ubuntu-mate-photos/kristopher-roller-110203.jpg",
}
_UC = "53666004c504f2941ad2e2d1ee91ff8ea01b5824:usr/share/backgrounds/ubuntucinnamon/"
H_UBUNTU_CINNAMON = {
    "Castle_by_Roman_Vizer": _UC + "focal/Castle_by_Roman_Vizer.jpg",
    "Cinnamon_by_Roman_Vizer": _UC + "eoan/Cinnamon_by_Roman_Vizer.jpg",
    "Concert_by_Roman_Vizer": _UC + "jammy/Concert_by_Roman_Vizer.jpg",
    "Fountain_at_Washington_Sq_Pk_by_Joshua_Peisach": _UC
    + "focal/Fountain_at_Washington_Sq_Pk_by_Joshua_Peisach.jpg",
    "Golden_Rocks_Of_Magic_by_Joshua_Peisach": _UC + "eoan/Golden_Rocks_Of_Magic_by_Joshua_Peisach.jpg",
    "Holiday_City_by_Roman_Vizer": _UC + "focal/Holiday_City_by_Roman_Vizer.jpg",
    "Niagara_Falls_by_Joshua_Park": _UC + "mantic/Niagara_Falls_by_Joshua_Park.jpg",
    "Oculus_Plaza_by_Joshua_Peisach": _UC + "focal/Oculus_Plaza_by_Joshua_Peisach.jpg",
}
HELD_OUT_H = tuple(H_UBUNTU_MATE) + tuple(H_UBUNTU_CINNAMON)
# On 2026-12-03 (session 28) set H was used, so set I took its place, never looked at while tuning:
# the photos of Solus's backgrounds (`git clone https://github.com/getsolus/artwork`; tags 27.0 =
# 18e2e3f, 31.0 = c9a067a, 32.0 = 935b24a; 2-14 MP JPEGs, CC-BY/CC-BY-SA, GPL-2.0 (John McCormack's),
# Pexels/Unsplash licence: a freestyle motocross rider mid-air, whiskey barrels on a quay at night, a
# canal bridge at blue hour, snowy conifers and a turquoise cove from above, a backlit river, a
# sailboat at sunset, red cherry leaves, red and yellow tulips, an orangutan, a white rose, a Komodo
# dragon, a hermit crab, boats under cumulus, a phone photo of an estuary at golden hour, an arch
# bridge in green; the drawn, rendered and from-orbit ones, those of unknown licence, those over
# 30 MP and Antelope Canyon (set E's scene) left out). Copy each with
# `git -C CLONE show 'REV:PATH' > FOLDER/NAME.jpg` (I_SOLUS gives REV:PATH).
I_SOLUS = {
    "HermiteCrab2560x1600": "27.0:backgrounds/HermiteCrab2560x1600.jpg",
    "LegendaryBarrels": "27.0:backgrounds/LegendaryBarrels.jpg",
    "Mama": "27.0:backgrounds/Mama.jpg",
    "ShannonClonmacnoise": "27.0:backgrounds/ShannonClonmacnoise.jpg",
    "Snow-Topped-Trees": "27.0:backgrounds/Snow-Topped-Trees.jpg",
    "TulipBee": "27.0:backgrounds/TulipBee.jpg",
    "TullamoreGrandCanal": "27.0:backgrounds/TullamoreGrandCanal.jpg",
    "boats-on-the-river": "32.0:backgrounds/boats-on-the-river.jpg",
    "camilo-beach": "31.0:backgrounds/camilo-beach.jpg",
    "exhibicion-freestyle-gp": "32.0:backgrounds/exhibición-freestyle-gp.jpg",
    "harbwr-penbre": "31.0:backgrounds/harbwr-penbre.jpg",
    "komodo-dragon": "32.0:backgrounds/komodo-dragon.jpg",
    "red-cherry-leaves": "32.0:backgrounds/red-cherry-leaves.jpg",
    "rosa-kent": "32.0:backgrounds/rosa-kent.jpg",
    "the-devils-bridge": "27.0:backgrounds/the-devils-bridge.jpg",
    "vents-du-sud": "32.0:backgrounds/vents-du-sud.jpg",
}
HELD_OUT_I = tuple(I_SOLUS)


def _revision_paths(folder: str, *files: str) -> dict[str, str]:
    """Photo name (the file's stem) -> ``REV:PATH`` for files in one folder of one revision."""
    return {Path(f).stem: folder + f for f in files}


# On 2026-12-03 (session 28) set I was used, so set J took its place: added before any change it will judge,
# and not run. The photos of Endless OS's wallpapers (`git clone https://github.com/endlessm/eos-media`, tag
# Release_6.0.1 = 3f42869, default_files/default_images/, licences in its LICENSE.tsv; 2.1 MP JPEGs, CC0/CC-BY/
# CC-BY-SA 2.0): a sleeping dog on a white rug, an open Bible on a church pew, pencil stubs on a white table, red
# and yellow shawls, children on a beach swing (black and white), a yellow church under blue sky, zebras in a
# crater, longtail boats at dusk, a frosted meadow, a crab on bright sand, a thrush among green leaves, a panda, a
# boat at sunset, pastel tiles, a pale island. Left out: the drawn, rendered and from-orbit ones, the heavily
# graded, Antelope Canyon (set E's photo), a no-derivatives one and those of unclear licence. Copy each with
# `git -C CLONE show 'REV:PATH' > FOLDER/NAME.jpg` (J_ENDLESS gives REV:PATH).
_EOS = "Release_6.0.1:default_files/default_images/"
J_ENDLESS = _revision_paths(
    _EOS,
    "bg_china_04.jpg",
    "bg_fnde_01.jpg",
    "bg_fnde_02.jpg",
    "bg_guatemala_07.jpg",
    "bg_india_01.jpg",
    "bg_tanzania_01.jpg",
    "bg_thailand_01.jpg",
    "Colour_Tiles.jpg",
    "Curious_Bird.jpg",
    "Frosted_Grass.jpg",
    "Happy_Kids_Swing_on_the_Beach.jpg",
    "Kapal_Nelayan_dan_Senja_di_Pantai_Pasir_Putih_Situbondo_Jawa_Timur.jpg",
    "Little_Crab.jpg",
    "Sleepy_Dog.jpg",
    "Solitary_Island.jpg",
)
HELD_OUT_J = tuple(J_ENDLESS)
# On 2026-12-04 (session 28) set J was used, so set K took its place: added before any change it would
# judge, and judged once in session 29. The photos of Xubuntu's community wallpapers (`git clone https://github.com/Xubuntu/xubuntu-community-artwork`,
# tag 22.04.0 = d23e097, usr/share/xfce4/backdrops/, licences in debian/copyright: CC0, CC-BY-3.0,
# CC-BY-4.0, CC-BY-SA; 2.1-24 MP JPEGs and one PNG, winners of the Xubuntu 14.04-22.04 contests):
# Kinkaku-ji reflected in its pond, a lighthouse on a rocky shore, the Kangchenjunga peaks, a cat on a
# street of painted houses, a wasp on yellow flowers, pebbles and frangipani by a pool, a frosted twig,
# the Milky Way over trees at night, a red harbour sunrise, a low sun over a boardwalk, a water drop on
# a green leaf, white blossoms, a ploughed field under clouds, a hut below mountains at dusk, the
# Matterhorn, backlit wheat (the graded ones, the bokeh/abstract ones and the ones whose files are
# absent from the snapshot left out). Copy each with
# `git -C CLONE show 'REV:PATH' > FOLDER/NAME.EXT` (K_XUBUNTU gives REV:PATH).
_XUBUNTU = "22.04.0:usr/share/xfce4/backdrops/"
K_XUBUNTU = _revision_paths(
    _XUBUNTU,
    "Field_by_Tibor_Mokanszki.jpg",
    "Kanchanjunga_Peaks_by_Pushkar_Deshpande.jpg",
    "Kinkaku_Ji_by_Elizabeth_K_Joseph.jpg",
    "Lighthouse_by_Dominik_Czernetzky.jpg",
    "Mountainous_View_by_Sven_Scheuermeier.jpg",
    "Sunset_by_Kacperu.jpg",
    "Untitled_7019_by_Mike_Sinko.jpg",
    "Untitled_by_Anna_Ceccarelli.jpg",
    "Untitled_by_Luna_Reichmann.jpg",
    "Untitled_by_Nesimi_Acarca.jpg",
    "Untitled_by_Troy_Jarrell.jpg",
    "Yellow_Jacket_by_Manuel_Frei.png",
    "balance.jpg",
    "jeff_morgan__stub_stewart_iridium_flare__4k.jpg",
    "sarah_muenz__winter_wonderland__4k.jpg",
    "soren_krarup_olesen__east_harbour_sunrise__4k.jpg",
)
HELD_OUT_K = tuple(K_XUBUNTU)
# On 2026-12-04 (session 29) set K was judged, so set L took its place: added before any change it would judge,
# and judged once in session 30 (default with luma denoising), then diagnosed (color_cast's green case).
# From two sources:
# - Fedora's supplemental wallpapers (`git clone https://github.com/fedoradesign/backgrounds`, tags
#   v26.2.7 = b0fc030, v28.0.0 = 6c12436, v30.1.2 = f2211f8, v31.0.4 = 387bebd, extras/; licences in each
#   tag's extras/themes.list and Attribution-Extras: CC0-1.0, CC-BY-SA-4.0; 2.5-26 MP camera JPEGs,
#   winners of the Fedora 26-31 contests): Sydney's harbour at night, a red marina sunset, a white pier
#   into a turquoise sea, lavender, rowing boats on a grey lake, snow on red hoodoos, Mount Rainier
#   above a meadow, a jellyfish in an aquarium, a swimming penguin, mushrooms on moss;
# - Ubuntu's wallpapers (ubuntu-wallpapers-{utopic,vivid,xenial,zesty,bionic}, Free Culture Showcase
#   winners, CC-BY-SA-3.0 per its COPYING), as collected in `git clone
#   https://github.com/azzamsa/ubuntu-wallpapers` at 7cb53ad, curated/<release>/; 2.7-9 MP JPEGs): a
#   concert crowd under stage lights, a record player with coffee, spice sacks at a market, a sunlit
#   wall with a door, chocolates, Manhattan from above at night.
# (The B&W, graded, composite, astronomical, Unsplash-only-licensed, <2 MP and >30 MP ones and those
# whose files are absent from the snapshots left out.) Copy each with
# `git -C CLONE show 'REV:PATH' > FOLDER/NAME.EXT` (L_FEDORA / L_UBUNTU give REV:PATH).
L_FEDORA = {
    "gnokii-beach-sea-water-sand-ocean-horizon": "v28.0.0:extras/origin/"
    "gnokii-beach-sea-water-sand-ocean-horizon.jpg",
    "grand-park": "v31.0.4:extras/grand-park.jpg",
    "jeena-stora-horredesjoen": "v28.0.0:extras/origin/jeena-stora-horredesjoen.jpg",
    "jelly": "v31.0.4:extras/jelly.jpg",
    "purple-dream": "v28.0.0:extras/purple-dream.jpg",
    "snow-on-balanced-rock": "v30.1.2:extras/snow-on-balanced-rock.jpg",
    "sunset-in-pennsylvania": "v26.2.7:extras/sunset-in-pennsylvania.jpg",
    "swimming-penguin": "v31.0.4:extras/swimming-penguin.jpg",
    "sydney": "v26.2.7:extras/sydney.jpg",
    "the-mushrooms": "v31.0.4:extras/the-mushrooms.jpg",
}
_UBUNTU = "7cb53ad9c56a993b5f2e8d5505421f813ecfb6d2:curated/"
L_UBUNTU = {
    "Candy_by_Bernhard_Hanakam": _UBUNTU + "zesty/Candy_by_Bernhard_Hanakam.jpg",
    "Euphoria_by_Tomasino.cz": _UBUNTU + "vivid/Euphoria!_by_Tomasino.cz.jpg",
    "Music_by_tomasino.cz": _UBUNTU + "utopic/Music_by_tomasino.cz.jpg",
    "Night_lights_by_Alberto_Salvia_Novella": _UBUNTU + "xenial/Night_lights_by_Alberto_Salvia_Novella.jpg",
    "Spices_in_Athens_by_Makis_Chourdakis": _UBUNTU + "bionic/Spices_in_Athens_by_Makis_Chourdakis.jpg",
    "Wall_with_door_on_Gozo_by_Matthias_Niess": _UBUNTU
    + "bionic/Wall_with_door_on_Gozo_by_Matthias_Niess.jpg",
}
HELD_OUT_L = tuple(L_FEDORA) + tuple(L_UBUNTU)
# On 2026-12-04 (session 30) set L was judged and then diagnosed, so set M takes its place: added before any
# change it will judge, and not run. More of Ubuntu's wallpapers (Free Culture Showcase winners of 17.10-18.10,
# CC-BY-SA-3.0 per curated/COPYING, authors in curated/AUTHORS), as collected in `git clone
# https://github.com/azzamsa/ubuntu-wallpapers` at 7cb53ad, curated/{artful,bionic,cosmic}/, taken in the
# repository's order by a helper that did not run imgenh on them; 6.1-8.3 MP JPEGs: a bee on lavender, lilies,
# a guitar headstock, a lighthouse at sunrise, lily-of-the-valley leaves, the London Eye from below, pomegranate
# seeds on white, a hiker above a snowy fjord, floodlit cathedral domes at night, a crocus, a harbour at dusk, an
# alpine ridge, raindrops on decking, a rock pool at dawn, a black-sand shore at blue hour, fairground wheels at
# night, Mount Parnassus, white blossoms. (The HDR-toned or graded, drawn, abstract, black-and-white, astronomical,
# absent and set-L ones left out; two names lose characters: an accent, brackets.) Copy each with
# `git -C CLONE show 'REV:PATH' > FOLDER/NAME.jpg` (M_UBUNTU gives REV:PATH; FOLDER is UBUNTU_M_PHOTOS).
M_UBUNTU = {
    "Bee_on_lavender_by_Martin": _UBUNTU + "artful/Bee_on_lavender_by_Martin.jpg",
    "Bloom_by_Victor_Madru": _UBUNTU + "artful/Bloom_by_Victor_Madru.jpg",
    "Headstock_by_Bernhard_Hanakam": _UBUNTU + "artful/Headstock_by_Bernhard_Hanakam.jpg",
    "Lighthouse_at_sunrise_by_Frenchie_Smalls": _UBUNTU
    + "artful/Lighthouse_at_sunrise_by_Frenchie_Smalls.jpg",
    "Lily_of_the_Valley_by_Robert_Slotte": _UBUNTU + "artful/Lily_of_the_Valley_by_Robert_Slotte.jpg",
    "London_Eye_by_Paul_Daniell": _UBUNTU + "artful/London_Eye_by_Paul_Daniell.jpg",
    "Red_delight_by_Rishikesh_Gawade": _UBUNTU + "artful/Red_delight_by_Rishikesh_Gawade.jpg",
    "Voss_by_fortuneblues": _UBUNTU + "artful/Voss_by_fortuneblues.jpg",
    "Cathdrale_Marie-Rheine-du-Monde_by_Thierry_Pon": _UBUNTU
    + "bionic/Cathédrale_Marie-Rheine-du-Monde_by_Thierry_Pon.jpg",
    "Crocus_Wallpaper_by_Roy_Tanck": _UBUNTU + "bionic/Crocus_Wallpaper_by_Roy_Tanck.jpg",
    "Halifax_Sunset_by_Vlad_Drobinin": _UBUNTU + "bionic/Halifax_Sunset_by_Vlad_Drobinin.jpg",
    "On_top_of_the_Rubihorn_by_Matthias_Niess": _UBUNTU
    + "bionic/On_top_of_the_Rubihorn_by_Matthias_Niess.jpg",
    "Raindrops_On_The_Table_by_Alex_Fazit": _UBUNTU + "bionic/Raindrops_On_The_Table_by_Alex_Fazit.jpg",
    "Ross_Jones_Rockpool_Sydney_by_Chris_Carignan": _UBUNTU
    + "bionic/Ross_Jones_Rockpool_(Sydney)_by_Chris_Carignan.jpg",
    "Black_sand_beach_by_Mads_Rosendahl": _UBUNTU + "cosmic/Black_sand_beach_by_Mads_Rosendahl.jpg",
    "Fairground_at_Night_by_martin": _UBUNTU + "cosmic/Fairground_at_Night_by_martin.jpg",
    "Image_of_Mount_Parnassus_by_simosx": _UBUNTU + "cosmic/Image_of_Mount_Parnassus_by_simosx.jpg",
    "Spring_Flowers_by_MK4-MI01": _UBUNTU + "cosmic/Spring_Flowers_by_MK4-MI01.jpg",
}
HELD_OUT_M = tuple(M_UBUNTU)
# On 2026-12-04 (session 31) set M was judged and then diagnosed, so set N takes its place: added before any change
# it will judge, and not run. More of Ubuntu's wallpapers (Free Culture Showcase and contest photos of 9.10, 19.04,
# 19.10 and 22.04, CC-BY-SA-3.0 per curated/COPYING, authors in curated/AUTHORS), as collected in the same clone
# at 7cb53ad, curated/{disco,eoan,jammy,karmic}/, taken in the repository's order by a helper that did not run imgenh
# on them; 2.2-8.4 MP JPEGs: a causeway by concrete pylons, red flowers before the Golden Gate Bridge, a rope
# railing, white beach rocks, a sea sunset, a tennis ball on sand, a park path by a brick wall, snowy Dolomite
# peaks, a yellow flower on blue, a lake at dusk, cherries on a board, a child climber's silhouette, a water lily,
# grass, a pier in fog, orange petals, sun glitter on water, a banana leaf. (The drawn, logo, abstract, HDR-toned
# or graded, sepia, astronomical and absent ones left out, focal's, groovy's and hirsute's too, which look like
# stock photos whose licence the repository does not state; one repeats a set-K photo, one name clashes with an
# OpenCV sample; one name loses its accents.) FOLDER is UBUNTU_N_PHOTOS.
N_UBUNTU = {
    "Cramond_Island_by_Keanu_Kerr": _UBUNTU + "disco/Cramond_Island_by_Keanu_Kerr.jpg",
    "Flower_Gate_Bridge_by_Michele_Agostini": _UBUNTU + "disco/Flower_Gate_Bridge_by_Michele_Agostini.jpg",
    "On_the_harbour_by_Vctor_Fernndez_Rico": _UBUNTU + "disco/On_the_harbour_by_Víctor_Fernández_Rico.jpg",
    "Staniel_Cay_by_Joseph_Bylund": _UBUNTU + "disco/Staniel_Cay_by_Joseph_Bylund.jpg",
    "Sunset_of_Peloponnesus_by_Simos_Xenitellis": _UBUNTU
    + "disco/Sunset_of_Peloponnesus_by_Simos_Xenitellis.jpg",
    "Tennis_ball_by_Artem_Kavalerov": _UBUNTU + "disco/Tennis_ball_by_Artem_Kavalerov.jpg",
    "Beijling_park_burial_path_by_Mattias_Andersson": _UBUNTU
    + "eoan/Beijling_park_burial_path_by_Mattias_Andersson.jpg",
    "Origin_of_nature_by_Julian_Tomasini": _UBUNTU + "eoan/Origin_of_nature_by_Julian_Tomasini.jpg",
    "Blue_flower_by_Elena_Stravoravdi": _UBUNTU + "jammy/Blue_flower_by_Elena_Stravoravdi.jpg",
    "Mirror_by_Uday_Nakade": _UBUNTU + "jammy/Mirror_by_Uday_Nakade.jpg",
    "Cherries": _UBUNTU + "karmic/Cherries.jpg",
    "Climbing": _UBUNTU + "karmic/Climbing.jpg",
    "FlordeLoto": _UBUNTU + "karmic/FlordeLoto.jpg",
    "GrassinA": _UBUNTU + "karmic/GrassinA.jpg",
    "MistyMorning": _UBUNTU + "karmic/MistyMorning.jpg",
    "Naranja": _UBUNTU + "karmic/Naranja.jpg",
    "OLife": _UBUNTU + "karmic/OLife.jpg",
    "Palmengarten": _UBUNTU + "karmic/Palmengarten.jpg",
}
HELD_OUT_N = tuple(N_UBUNTU)
# On 2026-12-04 (session 32) set N was judged and then diagnosed, so set O takes its place: added before any change
# it will judge, and not run. The Unsplash photos of Deepin's wallpapers (`git clone
# https://github.com/linuxdeepin/deepin-wallpapers` at ac2fe33, nonfree/unsplash.com/; the Unsplash License per
# .reuse/dep5 and LICENSES/LicenseRef-UnsplashLicense.txt, as for set I's), taken in the repository's order by a
# helper that did not run imgenh on them; 8.3-9.2 MP JPEGs: sunlit mountain ridges, dunes in haze, a betta fish on
# black, mountains mirrored on a beach at twilight, snowy peaks from the air at dusk, a beach from above, a backlit
# dune, a dune at blue hour, moon jellyfish, a bird before a waterfall, a mountain lake at sunset, tidal flats at
# sunset. (Set E's Ashim D'Silva picture and its Antelope Canyon scene, two heavily graded ones, two files absent
# from the snapshot and the CC-BY-NC-ND ones left out.) FOLDER is DEEPIN_PHOTOS.
_DEEPIN = "ac2fe33778aa16d332066227faaa6cc9baff6a1f:nonfree/unsplash.com/"
O_DEEPIN = {
    name: _DEEPIN + name + ".jpg"
    for name in (
        "cristina-gottardi-wndpWTiDuT0-unsplash",
        "jeremy-bishop-2e3hgvDnCpM-unsplash",
        "kyaw-tun-k6BHLfw_jUg-unsplash",
        "luca-micheli-ruWkmt3nU58-unsplash",
        "lucian-dachman-qxO2PBn7eKU-unsplash",
        "luke-stackpoole-mStq-dtsXCQ-unsplash",
        "massimiliano-morosinotto-MljwsnGwdOY-unsplash",
        "mike-yukhtenko-a2kD4b0KK4s-unsplash",
        "willian-justen-de-vasconcellos-ASKGjAeIY_U-unsplash",
        "wolfgang-hasselmann-WrVvYxq11Yk-unsplash",
        "zetong-li-TbHYpbi_Gbc-unsplash",
        "zetong-li-VAT6XKKwaIE-unsplash",
    )
}
HELD_OUT_O = tuple(O_DEEPIN)
# On 2026-12-04 (session 33) set O was judged and then diagnosed, so set P took its place, judged once at the start of
# session 34 with every config as session 33 left them (results/quality-set-p.md). More of Fedora's supplemental
# wallpapers (`git clone https://github.com/fedoradesign/backgrounds`, tags v26.2.7 = b0fc030, v30.1.2 = f2211f8,
# v31.0.4 = 387bebd, extras/; licences in each tag's Attribution-Extras and extras/themes.list: CC-BY-SA-4.0 and
# CC0-1.0), those set L did not take, in the repository's order, picked by a helper that did not run imgenh on them;
# 3.7-20.6 MP (nine JPEGs, one PNG): a stone on raked sand, blue mountain ridges in haze, mushrooms on a mossy log, a
# lighthouse under a pink dusk sky, a golden glen at sunset, orange boulders in a calm sea at dawn, snowy peaks
# mirrored in a lake, a lighthouse causeway on a rocky point, a white house by a still river, dune grass by tidal
# flats. (The drawn, abstract, black and white, selectively coloured, graded, recoloured and astronomical ones, one
# under 2 MP, one whose name clashes with set B's RainDrops, and those absent from the snapshot left out; Linux Mint's
# and GNOME's backgrounds were out of reach.) FOLDER is FEDORA_P_PHOTOS.
_FEDORA_26 = "b0fc030210feae804512424f89d96366756a216a:extras/"
_FEDORA_30 = "f2211f80a36e661363c89627f6e5228201531d1d:extras/"
_FEDORA_31 = "387bebdd17e2550769f868c84addc6aaaf398400:extras/"
P_FEDORA = {
    "zen": _FEDORA_26 + "zen.png",
    "mountains-of-north-iran": _FEDORA_30 + "mountains-of-north-iran.jpg",
    "mushroom-family": _FEDORA_30 + "mushroom-family.jpg",
    "pink-house": _FEDORA_30 + "pink-house.jpg",
    "sunset-on-skye": _FEDORA_30 + "sunset-on-skye.jpg",
    "morning-at-sea": _FEDORA_31 + "morning-at-sea.jpg",
    "nature-mirror": _FEDORA_31 + "nature-mirror.jpg",
    "phare-du-petit-minou": _FEDORA_31 + "phare-du-petit-minou.jpg",
    "serenity": _FEDORA_31 + "serenity.jpg",
    "watt": _FEDORA_31 + "watt.jpg",
}
HELD_OUT_P = tuple(P_FEDORA)
# Set Q, added in session 33 and judged once after session 34's change (results/quality-set-q.md): the Kodak Lossless
# True Color Image Suite (kodim01-24, 768x512 PNG scans of film photographs, released by Eastman Kodak for
# unrestricted usage, as r0k.us/graphics/kodak says), from `git clone https://github.com/coodie/quant` at bc7affc,
# images/kodim/ (its images/compressed_kodim/README.md names r0k.us as the source; the 24 files are byte for byte
# those of MohamedBakrAli/Kodak-Lossless-True-Color-Image-Suite at dd2e110). Taken whole, by a helper that neither
# looked at them nor ran imgenh on them. FOLDER is KODAK_PHOTOS.
_KODAK = "bc7affc715299a8d98403622918116b88657a8b8:images/kodim/"
Q_KODAK = {f"kodim{i:02d}": _KODAK + f"kodim{i:02d}.png" for i in range(1, 25)}
HELD_OUT_Q = tuple(Q_KODAK)
SETS = {
    "tuning": TUNING,
    "held_out": HELD_OUT,
    "held_out_b": HELD_OUT_B,
    "held_out_c": HELD_OUT_C,
    "held_out_d": HELD_OUT_D,
    "held_out_e": HELD_OUT_E,
    "held_out_f": HELD_OUT_F,
    "held_out_g": HELD_OUT_G,
    "held_out_h": HELD_OUT_H,
    "held_out_i": HELD_OUT_I,
    "held_out_j": HELD_OUT_J,
    "held_out_k": HELD_OUT_K,
    "held_out_l": HELD_OUT_L,
    "held_out_m": HELD_OUT_M,
    "held_out_n": HELD_OUT_N,
    "held_out_o": HELD_OUT_O,
    "held_out_p": HELD_OUT_P,
    "held_out_q": HELD_OUT_Q,
}
OPENCV_SAMPLES = Path(os.environ.get("OPENCV_SAMPLES", "/usr/share/doc/opencv-doc/examples/data"))
MATE_BACKGROUNDS = Path(os.environ.get("MATE_BACKGROUNDS", "/usr/share/backgrounds/mate/nature"))
LOMIRI_BACKGROUNDS = Path(os.environ.get("LOMIRI_BACKGROUNDS", "/usr/share/backgrounds"))
PLASMA_WALLPAPERS = Path(os.environ.get("PLASMA_WALLPAPERS", "/usr/share/wallpapers"))
ELEMENTARY_WALLPAPERS = Path(
    os.environ.get("ELEMENTARY_WALLPAPERS", Path.home() / "elementary-wallpapers" / "backgrounds")
)
BUDGIE_BACKGROUNDS = Path(
    os.environ.get("BUDGIE_BACKGROUNDS", Path.home() / "budgie-backgrounds" / "backgrounds")
)
ELEMENTARY_OLD_WALLPAPERS = Path(
    os.environ.get("ELEMENTARY_OLD_WALLPAPERS", Path.home() / "elementary-old-wallpapers")
)
POP_WALLPAPERS = Path(os.environ.get("POP_WALLPAPERS", Path.home() / "pop-wallpapers" / "original"))
UBUNTU_MATE_PHOTOS = Path(os.environ.get("UBUNTU_MATE_PHOTOS", Path.home() / "ubuntu-mate-photos"))
UBUNTU_CINNAMON_PHOTOS = Path(os.environ.get("UBUNTU_CINNAMON_PHOTOS", Path.home() / "ubuntucinnamon-photos"))
SOLUS_PHOTOS = Path(os.environ.get("SOLUS_PHOTOS", Path.home() / "solus-photos"))
ENDLESS_PHOTOS = Path(os.environ.get("ENDLESS_PHOTOS", Path.home() / "endless-photos"))
XUBUNTU_PHOTOS = Path(os.environ.get("XUBUNTU_PHOTOS", Path.home() / "xubuntu-photos"))
FEDORA_PHOTOS = Path(os.environ.get("FEDORA_PHOTOS", Path.home() / "fedora-photos"))
UBUNTU_PHOTOS = Path(os.environ.get("UBUNTU_PHOTOS", Path.home() / "ubuntu-photos"))
UBUNTU_M_PHOTOS = Path(os.environ.get("UBUNTU_M_PHOTOS", Path.home() / "ubuntu-m-photos"))
UBUNTU_N_PHOTOS = Path(os.environ.get("UBUNTU_N_PHOTOS", Path.home() / "ubuntu-n-photos"))
DEEPIN_PHOTOS = Path(os.environ.get("DEEPIN_PHOTOS", Path.home() / "deepin-photos"))
FEDORA_P_PHOTOS = Path(os.environ.get("FEDORA_P_PHOTOS", Path.home() / "fedora-p-photos"))
KODAK_PHOTOS = Path(os.environ.get("KODAK_PHOTOS", Path.home() / "kodak-photos"))
MAX_PIXELS = 400_000
INPUT_QUALITY = 92
MAGICK = "/usr/bin/convert"
FIGURES_SHOWN = ("noise_sigma", "clipped_shadows", "clipped_highlights", "colourfulness")


# Sets copied file by file from a public git repository: their names (-> REV:PATH), the repository, and the
# folder the files were copied to with the variable that moves it.
GIT_SETS = {
    "h_mate": (H_UBUNTU_MATE, "ubuntu-mate/ubuntu-mate-artwork", UBUNTU_MATE_PHOTOS, "UBUNTU_MATE_PHOTOS"),
    "h_cinnamon": (
        H_UBUNTU_CINNAMON,
        "ubuntucinnamon/ubuntucinnamon-wallpapers",
        UBUNTU_CINNAMON_PHOTOS,
        "UBUNTU_CINNAMON_PHOTOS",
    ),
    "i_solus": (I_SOLUS, "getsolus/artwork", SOLUS_PHOTOS, "SOLUS_PHOTOS"),
    "j_endless": (J_ENDLESS, "endlessm/eos-media", ENDLESS_PHOTOS, "ENDLESS_PHOTOS"),
    "k_xubuntu": (K_XUBUNTU, "Xubuntu/xubuntu-community-artwork", XUBUNTU_PHOTOS, "XUBUNTU_PHOTOS"),
    "l_fedora": (L_FEDORA, "fedoradesign/backgrounds", FEDORA_PHOTOS, "FEDORA_PHOTOS"),
    "l_ubuntu": (L_UBUNTU, "azzamsa/ubuntu-wallpapers", UBUNTU_PHOTOS, "UBUNTU_PHOTOS"),
    "m_ubuntu": (M_UBUNTU, "azzamsa/ubuntu-wallpapers", UBUNTU_M_PHOTOS, "UBUNTU_M_PHOTOS"),
    "n_ubuntu": (N_UBUNTU, "azzamsa/ubuntu-wallpapers", UBUNTU_N_PHOTOS, "UBUNTU_N_PHOTOS"),
    "o_deepin": (O_DEEPIN, "linuxdeepin/deepin-wallpapers", DEEPIN_PHOTOS, "DEEPIN_PHOTOS"),
    "p_fedora": (P_FEDORA, "fedoradesign/backgrounds", FEDORA_P_PHOTOS, "FEDORA_P_PHOTOS"),
    "q_kodak": (Q_KODAK, "coodie/quant", KODAK_PHOTOS, "KODAK_PHOTOS"),
}

# Where each set's files live: the folder, its Debian package and the variable that moves it.
SOURCES = {
    "b": (MATE_BACKGROUNDS, "mate-backgrounds", "MATE_BACKGROUNDS"),
    "c": (LOMIRI_BACKGROUNDS, "lomiri-wallpapers-16.04 lomiri-wallpapers-20.04", "LOMIRI_BACKGROUNDS"),
    "d": (PLASMA_WALLPAPERS, "plasma-workspace-wallpapers", "PLASMA_WALLPAPERS"),
    "e": (ELEMENTARY_WALLPAPERS, None, "ELEMENTARY_WALLPAPERS"),
    "f_budgie": (BUDGIE_BACKGROUNDS, None, "BUDGIE_BACKGROUNDS"),
    "f_elementary": (ELEMENTARY_OLD_WALLPAPERS, None, "ELEMENTARY_OLD_WALLPAPERS"),
    "g": (POP_WALLPAPERS, None, "POP_WALLPAPERS"),
    **{key: (folder, None, variable) for key, (_, _, folder, variable) in GIT_SETS.items()},
    "opencv": (OPENCV_SAMPLES, "opencv-doc", "OPENCV_SAMPLES"),
}


def _largest_size(folder: Path) -> list[Path]:
    # Each Plasma wallpaper comes as crops of one picture at several screen sizes: the largest.
    sizes = sorted(folder.glob("*x*.jpg"), key=lambda p: np.prod([int(v) for v in p.stem.split("x")]))
    return sizes[-1:]


def source_file(name: str) -> Path | None:
    """The file a photo is loaded from (None for scikit-image's); exits naming the package if missing."""
    if name in SKIMAGE_TUNING:
        return None
    held_out = {
        "b": HELD_OUT_B,
        "c": HELD_OUT_C,
        "d": HELD_OUT_D,
        "e": HELD_OUT_E,
        "f_budgie": HELD_OUT_F_BUDGIE,
        "f_elementary": tuple(F_ELEMENTARY_OLD),
        "g": HELD_OUT_G,
        **{set_key: tuple(names) for set_key, (names, *_) in GIT_SETS.items()},
    }
    key = next((k for k, names in held_out.items() if name in names), "opencv")
    folder, package, variable = SOURCES[key]
    if key == "d":
        folder = folder / name / "contents" / "images"
        found = _largest_size(folder)
    else:
        found = sorted(folder.glob(name + ".*"))
    if not found:
        clones = {
            "e": "`git clone https://github.com/elementary/wallpapers`",
            "f_budgie": "`git clone https://github.com/BuddiesOfBudgie/budgie-backgrounds`",
            "f_elementary": f"`git -C <elementary/wallpapers clone> show '{F_ELEMENTARY_OLD.get(name)}'`",
            "g": "`git clone https://github.com/pop-os/wallpapers` (original/ at 03a25a1)",
            **{
                set_key: f"`git clone https://github.com/{repository}`, then `git show '{names.get(name)}'`"
                for set_key, (names, repository, *_) in GIT_SETS.items()
            },
        }
        get = f"`apt-get install {package}`" if package else clones[key]
        sys.exit(f"quality.py: {folder / name}.*: missing; {get} (or set {variable})")
    return found[0]


def _opencv_photo(name: str) -> np.ndarray:
    return cv2.imread(str(source_file(name)), cv2.IMREAD_COLOR)


def photo_camera(name: str) -> CameraExposure | None:
    """The exposure the clean photo was taken with, from its file's EXIF (None: not recorded)."""
    path = source_file(name)
    if path is None:
        return None
    _, types, blobs = cv2.imreadWithMetadata(str(path), cv2.IMREAD_COLOR)
    meta = {int(t): np.asarray(b).tobytes() for t, b in zip(types, blobs, strict=False)}
    return camera_exposure(meta.get(0))


def load_photo(name: str) -> np.ndarray:
    """A clean photo as BGR uint8, shrunk (area) to at most ``MAX_PIXELS``.

    They come from ``skimage.data`` (``SKIMAGE_TUNING``), Debian's mate-backgrounds
    (``HELD_OUT_B``), lomiri-wallpapers (``HELD_OUT_C``), plasma-workspace-wallpapers
    (``HELD_OUT_D``), elementary OS's wallpapers (``HELD_OUT_E``), Budgie's backgrounds and
    elementary OS's older wallpapers (``HELD_OUT_F``), Pop!_OS's wallpapers (``HELD_OUT_G``),
    Ubuntu MATE's and Ubuntu Cinnamon's (``HELD_OUT_H``), Solus's backgrounds (``HELD_OUT_I``),
    Endless OS's (``HELD_OUT_J``), Xubuntu's community wallpapers (``HELD_OUT_K``), Fedora's
    and Ubuntu's contest wallpapers (``HELD_OUT_L``), more of Ubuntu's (``HELD_OUT_M``, ``HELD_OUT_N``),
    Deepin's Unsplash photos (``HELD_OUT_O``), more of Fedora's (``HELD_OUT_P``), the Kodak suite
    (``HELD_OUT_Q``) or OpenCV's sample data (the rest).
    """
    import skimage.data

    path = source_file(name)
    if path is not None:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    else:
        rgb = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
        bgr = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2BGR)
    h, w = bgr.shape[:2]
    scale = min(1.0, (MAX_PIXELS / (h * w)) ** 0.5)
    if scale < 1.0:
        bgr = cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return bgr


# ---------------------------------------------------------------------------------------------
# degradations: float BGR in [0, 1] -> float BGR in [0, 1] (sRGB-encoded), deterministic
# ---------------------------------------------------------------------------------------------


def to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055)


def _gains(x: np.ndarray, bgr: tuple[float, float, float]) -> np.ndarray:
    return to_srgb(to_linear(x) * np.array(bgr))


def _backlit(x: np.ndarray) -> np.ndarray:
    """The lower half 2.7 stops darker (linear x 0.15), with a soft edge over 6% of the height."""
    h = x.shape[0]
    rows = np.arange(h, dtype=np.float64) / max(h - 1, 1)
    ramp = 1.0 / (1.0 + np.exp(-(rows - 0.5) / 0.015))
    gain = 1.0 - 0.85 * ramp
    return to_srgb(to_linear(x) * gain[:, None, None])


def _noisy(x: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return x + rng.normal(0.0, 10.0 / 255.0, x.shape)


def _jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    img = np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR).astype(np.float64) / 255.0


DEGRADATIONS = {
    "clean": lambda x, s: x,
    "underexposed": lambda x, s: to_srgb(to_linear(x) * 0.2),  # -2.3 stops
    "overexposed": lambda x, s: to_srgb(to_linear(x) * 2.5),  # +1.3 stops, highlights clip
    "haze": lambda x, s: to_srgb(to_linear(x) * 0.55 + 0.45 * 0.8),  # I = J t + A (1 - t)
    "tungsten": lambda x, s: _gains(x, (0.55, 0.85, 1.15)),  # daylight balance under ~3000 K
    "green": lambda x, s: _gains(x, (0.85, 1.1, 0.8)),  # fluorescent / foliage tint
    "flat": lambda x, s: 0.5 + (x - 0.5) * 0.45,  # low contrast about mid-grey
    "noisy": _noisy,  # Gaussian sigma 10 levels, per channel (chroma noise too)
    "backlit": lambda x, s: _backlit(x),
    "jpeg_blocks": lambda x, s: _jpeg(x, 12),  # heavy JPEG blocking
}


# The degradations that are a camera's exposure error change what its EXIF would record: an
# under-exposure let in 0.2 of the light (a shorter exposure time), an over-exposure 2.5 times it.
EXPOSURE_TIME_SCALE = {"underexposed": 0.2, "overexposed": 2.5}


def degraded_camera(camera: CameraExposure | None, case: str) -> CameraExposure | None:
    """The exposure a camera would have recorded for the degraded shot."""
    if camera is None or case not in EXPOSURE_TIME_SCALE:
        return camera
    return CameraExposure(camera.exposure_time * EXPOSURE_TIME_SCALE[case], camera.f_number, camera.iso)


def degraded_input(clean: np.ndarray, case: str, seed: int) -> np.ndarray:
    """The degraded photo as the uint8 BGR pixels of a quality-92 JPEG file."""
    x = DEGRADATIONS[case](clean.astype(np.float64) / 255.0, seed)
    img = np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, INPUT_QUALITY])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


# ---------------------------------------------------------------------------------------------
# methods: the degraded input -> the output as a user would get it back
# ---------------------------------------------------------------------------------------------


def run_config(
    path: str, img: np.ndarray, shape: tuple[int, int], camera: CameraExposure | None = None
) -> np.ndarray:
    """The pipeline's output, encoded with its output settings and decoded again.

    As ``imgenh run`` writes it: an image the steps leave exactly as it was comes back as the
    input file itself (``output.unchanged: copy``), not re-encoded. ``camera`` is the exposure
    the file's EXIF would hold.
    """
    pipeline = load_pipeline(path)
    out, _ = pipeline.apply(img, camera)
    settings = pipeline.output
    copies = (
        settings.unchanged == "copy" and settings.metadata == "keep" and settings.format in ("keep", "jpg")
    )
    if copies and np.array_equal(out, img):
        return img
    if pipeline.output.format in ("keep", "jpg"):
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, pipeline.output.quality])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if out.shape[:2] != shape:  # dataset_normalize resizes: compare at the original size
        out = cv2.resize(out, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return out


def run_magick(img: np.ndarray) -> np.ndarray:
    """``convert IN.jpg -auto-level -auto-gamma OUT.jpg`` (ImageMagick keeps the input's quality)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.jpg"), os.path.join(tmp, "out.jpg")
        cv2.imwrite(src, img, [cv2.IMWRITE_JPEG_QUALITY, INPUT_QUALITY])
        subprocess.run([MAGICK, src, "-auto-level", "-auto-gamma", dst], check=True, capture_output=True)
        return cv2.imread(dst, cv2.IMREAD_COLOR)


def ciede2000(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIEDE2000 between two BGR uint8 images."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    lab = [rgb2lab(x[..., ::-1].astype(np.float64) / 255.0) for x in (a, b)]
    return float(deltaE_ciede2000(lab[0], lab[1]).mean())


def score_case(photo: str, case: str, configs: list[str], magick: bool) -> list[dict]:
    """Every method on one degraded photo: a row per method with its CIEDE2000 and figures."""
    cv2.setNumThreads(1)
    clean = load_photo(photo)
    seed = sum(map(ord, photo + case))
    img = degraded_input(clean, case, seed)
    camera = degraded_camera(photo_camera(photo), case)
    outputs = {"nothing": img}
    if magick:
        outputs["magick"] = run_magick(img)
    for path in configs:
        outputs[Path(path).stem] = run_config(path, img, clean.shape[:2], camera)
    rows = []
    for method, out in outputs.items():
        row = {"photo": photo, "case": case, "method": method, "ciede2000": round(ciede2000(out, clean), 3)}
        row["figures"] = figures(out)
        rows.append(row)
    rows.append({"photo": photo, "case": case, "method": "original", "figures": figures(clean)})
    return rows


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------


def summarise(rows: list[dict], photos: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """``{case: {method: mean CIEDE2000 over photos}}`` plus ``degraded mean`` and ``worse than nothing``."""
    mine = [r for r in rows if r["photo"] in photos and "ciede2000" in r]
    methods = list(dict.fromkeys(r["method"] for r in mine))
    cases = list(dict.fromkeys(r["case"] for r in mine))
    table = {
        case: {
            m: float(np.mean([r["ciede2000"] for r in mine if r["case"] == case and r["method"] == m]))
            for m in methods
        }
        for case in cases
    }
    degraded = [c for c in cases if c != "clean"]
    table["degraded mean"] = {m: float(np.mean([table[c][m] for c in degraded])) for m in methods}
    table["cases worse than nothing"] = {
        m: float(sum(table[c][m] > table[c]["nothing"] for c in degraded)) for m in methods
    }
    return table


# A per-photo view beside the means: on a set of 12-18 photos one photo a method ruins moves a case's
# mean by 0.5-0.8, so "worse than nothing on average" is decided by single photos. A mean CIEDE2000
# 2 above doing nothing is a change most viewers see side by side.
VISIBLY_WORSE = 2.0


def worse_shares(rows: list[dict], photos: tuple[str, ...], margin: float = VISIBLY_WORSE) -> dict:
    """``{case: {method: share of photos}}`` whose output is more than ``margin`` worse than nothing.

    Parameters
    ----------
    rows : list of dict
        :func:`score_case` rows (``photo``, ``case``, ``method``, ``ciede2000``).
    photos : tuple of str
        The photos to count over.
    margin : float
        CIEDE2000 above the degraded input's own that counts as worse.
    """
    mine = [r for r in rows if r["photo"] in photos and "ciede2000" in r]
    nothing = {(r["photo"], r["case"]): r["ciede2000"] for r in mine if r["method"] == "nothing"}
    methods = [m for m in dict.fromkeys(r["method"] for r in mine) if m != "nothing"]
    shares: dict[str, dict[str, float]] = {}
    for r in mine:
        if r["method"] != "nothing":
            worse = r["ciede2000"] > nothing[(r["photo"], r["case"])] + margin
            shares.setdefault(r["case"], {m: 0.0 for m in methods})[r["method"]] += float(worse)
    return {case: {m: n / len(photos) for m, n in row.items()} for case, row in shares.items()}


def shares_markdown(title: str, shares: dict) -> str:
    """The :func:`worse_shares` table, in per cent."""
    return "\n".join([title, "", *table_lines("case", shares, lambda case, v: f"{100 * v:.1f}%")]) + "\n"


def figure_means(rows: list[dict], photos: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Mean of each shown figure per method (over photos and cases); ``original`` is the clean photos."""
    mine = [r for r in rows if r["photo"] in photos]
    methods = list(dict.fromkeys(r["method"] for r in mine))
    return {
        m: {f: float(np.mean([r["figures"][f] for r in mine if r["method"] == m])) for f in FIGURES_SHOWN}
        for m in methods
    }


def table_lines(corner: str, table: dict[str, dict[str, float]], cell) -> list[str]:
    """A markdown table of ``{row: {column: value}}``; ``cell(row, value)`` writes each value."""
    columns = list(next(iter(table.values())))
    lines = [f"| {corner} | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for row, values in table.items():
        lines.append(f"| {row} | " + " | ".join(cell(row, values[c]) for c in columns) + " |")
    return lines


def markdown(name: str, photos: tuple[str, ...], table: dict, figs: dict) -> str:
    def mean_or_count(row: str, value: float) -> str:
        return f"{value:.0f}" if row.startswith("cases") else f"{value:.2f}"

    lines = [
        f"### {name} set: {', '.join(photos)}",
        "",
        "Mean CIEDE2000 to the clean original (lower is better; `nothing` = the degraded JPEG itself).",
        "",
        *table_lines("case", table, mean_or_count),
        "",
        "Mean figures of the outputs over every case (`original`: the clean photos).",
        "",
        *table_lines("method", figs, lambda row, value: f"{value:.2f}"),
    ]
    return "\n".join(lines) + "\n"


# For --sheets: each config on a held-out photo degraded the way it is meant for.
SHEETS = {
    "default": ("fruits", "flat"),
    "color_cast": ("building", "tungsten"),
    "low_light": ("home", "underexposed"),
    "hdr_tone_map": ("leuvenA", "backlit"),
    "dataset_normalize": ("squirrel_cls", "clean"),
    "scanned_documents": ("sudoku", "clean"),  # a phone photo of newsprint under uneven light
}


def write_sheets(configs: list[str], folder: Path) -> None:
    """An ``imgenh preview`` contact sheet per config (input, every step, output) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in configs:
        photo, case = SHEETS.get(Path(path).stem, ("messi5", "noisy"))
        clean = load_photo(photo) if photo != "sudoku" else _opencv_photo(photo)
        src = folder / f"{photo}_{case}.jpg"
        cv2.imwrite(str(src), degraded_input(clean, case, sum(map(ord, photo + case))))
        out = folder / f"{Path(path).stem}-{photo}_{case}.jpg"
        cmd = [sys.executable, "-m", "imgenh", "preview", path, str(src), "-o", str(out), "--width", "1200"]
        subprocess.run(cmd, check=True, cwd=ROOT)
        print(f"sheet: {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--set", nargs="+", choices=(*SETS, "all"), default=["all"], help="one or more sets (default: all)"
    )
    parser.add_argument("--configs", nargs="*", default=None, help="pipeline files (default: configs/*.yaml)")
    parser.add_argument("--cases", nargs="*", default=list(DEGRADATIONS), choices=list(DEGRADATIONS))
    parser.add_argument("--out", default="quality", help="output prefix: writes OUT.md and OUT.json")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-magick", action="store_true", help="skip the ImageMagick baseline")
    parser.add_argument(
        "--sheets", metavar="DIR", help="only write a preview contact sheet per config to DIR"
    )
    args = parser.parse_args(argv)
    configs = [
        str(p)
        for p in (args.configs if args.configs is not None else sorted((ROOT / "configs").glob("*.yaml")))
    ]
    if args.sheets:
        write_sheets(configs, Path(args.sheets))
        return
    magick = not args.no_magick and shutil.which(MAGICK) is not None
    sets = list(SETS) if "all" in args.set else list(dict.fromkeys(args.set))
    photos = [p for s in sets for p in SETS[s]]
    start = time.perf_counter()
    tasks = [delayed(score_case)(p, c, configs, magick) for p in photos for c in args.cases]
    rows = [r for part in Parallel(n_jobs=args.jobs)(tasks) for r in part]
    text = [f"# Quality benchmark ({time.strftime('%Y-%m-%d')}, `python benchmarks/quality.py`)", ""]
    report = {"configs": configs, "magick": magick, "sets": {}, "rows": rows}
    worse_title = f"Share of photos made more than {VISIBLY_WORSE:g} CIEDE2000 worse than doing nothing"
    for s in sets:
        table, figs = summarise(rows, SETS[s]), figure_means(rows, SETS[s])
        shares = worse_shares(rows, SETS[s])
        report["sets"][s] = {
            "photos": list(SETS[s]),
            "ciede2000": table,
            "figures": figs,
            "worse_shares": shares,
        }
        text.append(markdown(s, SETS[s], table, figs))
        text.append(shares_markdown(worse_title + ":", shares))
    if len(sets) > 1:
        everyone = tuple(photos)
        report["worse_shares"] = worse_shares(rows, everyone)
        title = f"### Every set ({len(everyone)} photos)\n\n{worse_title}:"
        text.append(shares_markdown(title, report["worse_shares"]))
    text.append(f"({len(rows)} rows in {time.perf_counter() - start:.0f} s)\n")
    Path(args.out + ".md").write_text("\n".join(text), encoding="utf-8")
    Path(args.out + ".json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    print("\n".join(text))


if __name__ == "__main__":
    main()
