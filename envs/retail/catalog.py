"""The product types the retail generator draws from: name, typical price and option dimensions.

The list is our own. Each product starts at the margin (``name | typical price in dollars``); the
indented lines under it list its option dimensions (``option: value, value; option: ...``);
``$name`` stands for one of the shared value lists below.
"""

from __future__ import annotations

__all__ = ["CATALOG", "ProductType"]

ProductType = tuple[str, float, tuple[tuple[str, tuple[str, ...]], ...]]

_SHARED = {
    "$colors": ("black", "white", "gray", "navy", "red", "green", "blue", "beige"),
    "$apparel": ("XS", "S", "M", "L", "XL", "XXL"),
    "$shoe": ("6", "7", "8", "9", "10", "11", "12"),
}

_TEXT = """
Crew Neck T-Shirt | 24
    color: $colors; size: $apparel; fabric: cotton, organic cotton, linen blend
Hooded Sweatshirt | 58
    color: $colors; size: $apparel; fit: regular, relaxed, slim
Denim Jeans | 69
    wash: light, medium, dark, black; waist: 28, 30, 32, 34, 36, 38; cut: straight, slim, bootcut
Rain Jacket | 119
    color: yellow, navy, olive, black; size: $apparel; hood: fixed, packable
Wool Sweater | 89
    color: charcoal, cream, burgundy, forest green; size: $apparel; neckline: crew, v-neck, turtleneck
Puffer Vest | 79
    color: $colors; size: $apparel; fill: down, synthetic
Chino Shorts | 39
    color: khaki, navy, olive, stone; waist: 30, 32, 34, 36; inseam: 7 inch, 9 inch
Flannel Shirt | 45
    pattern: red plaid, blue plaid, green check, gray check; size: $apparel; fit: regular, slim
Yoga Leggings | 54
    color: black, plum, teal, heather gray; size: $apparel; rise: mid, high
Wool Socks | 18
    color: gray, brown, navy, striped; size: S, M, L; height: ankle, crew, knee
Baseball Cap | 22
    color: $colors; closure: snapback, strapback, fitted
Winter Gloves | 34
    color: black, brown, gray; size: S, M, L, XL; lining: fleece, wool, thinsulate
Trail Running Shoes | 129
    color: black, blue, orange, gray; size: $shoe; width: regular, wide; drop: 4mm, 8mm
Leather Boots | 189
    color: brown, black, tan; size: $shoe; lining: unlined, shearling
Canvas Sneakers | 59
    color: white, black, red, navy; size: $shoe; style: low top, high top
Slippers | 29
    color: gray, navy, pink; size: S, M, L, XL; sole: soft, rubber
Sandals | 44
    color: brown, black, tan; size: $shoe; strap: single, double, toe post
Laptop | 1299
    screen: 13-inch, 14-inch, 16-inch; processor: 8-core, 10-core, 12-core; memory: 16GB, 32GB, 64GB
    storage: 512GB SSD, 1TB SSD, 2TB SSD; color: silver, graphite
Chromebook | 349
    screen: 11-inch, 14-inch; memory: 4GB, 8GB; storage: 64GB, 128GB; color: silver, blue
Smartphone | 799
    storage: 128GB, 256GB, 512GB; color: black, white, blue, green; screen: 6.1-inch, 6.7-inch
Tablet | 499
    screen: 8-inch, 11-inch, 13-inch; storage: 64GB, 128GB, 256GB; connectivity: Wi-Fi, Wi-Fi + cellular
    color: silver, space gray
E-Book Reader | 139
    screen: 6-inch, 7-inch; storage: 8GB, 16GB, 32GB; ads: with ads, ad-free
Smart Watch | 299
    case size: 41mm, 45mm; case color: black, silver, rose gold; band: sport, leather, metal link
Fitness Tracker | 99
    color: black, lilac, sage; band size: small, large; display: mono, color
Noise-Cancelling Headphones | 279
    color: black, silver, midnight blue; connection: bluetooth, bluetooth + wired; fit: over-ear, on-ear
Wireless Earbuds | 149
    color: black, white, blue; case: wired charging, wireless charging; tips: silicone, foam
Portable Speaker | 119
    color: black, red, teal, sand; waterproofing: IPX4, IP67; battery: 12 hours, 24 hours
Soundbar | 329
    channels: 2.0, 3.1, 5.1; subwoofer: none, wireless; color: black, white
Computer Monitor | 289
    size: 24-inch, 27-inch, 32-inch; resolution: 1080p, 1440p, 4K; refresh rate: 60Hz, 144Hz
Mechanical Keyboard | 129
    layout: full size, tenkeyless, 75%; switches: linear, tactile, clicky; lighting: white, RGB
Wireless Mouse | 49
    color: black, white, gray; grip: ergonomic, ambidextrous; receiver: USB-A, USB-C, bluetooth only
Webcam | 79
    resolution: 720p, 1080p, 4K; microphone: mono, stereo; mount: clip, tripod
External SSD | 119
    capacity: 500GB, 1TB, 2TB, 4TB; interface: USB-C, Thunderbolt; color: black, blue
USB-C Hub | 45
    ports: 4-in-1, 7-in-1, 10-in-1; color: gray, silver; cable: short, long
Power Bank | 49
    capacity: 10000mAh, 20000mAh, 26800mAh; output: 18W, 45W, 65W; color: black, white
Wi-Fi Router | 169
    standard: Wi-Fi 6, Wi-Fi 6E, Wi-Fi 7; pack: single, 2-pack, 3-pack
Action Camera | 349
    resolution: 4K, 5.3K; bundle: camera only, adventure kit; color: black, white
Mirrorless Camera | 1499
    sensor: APS-C, full frame; kit lens: body only, 24-70mm, 18-135mm; color: black, silver
Instant Camera | 89
    color: pink, mint, white, blue; film format: mini, square
Drone | 749
    camera: 2.7K, 4K, 5.1K; controller: standard, screen controller; batteries: 1, 3
Video Game Console | 499
    edition: digital, disc; storage: 512GB, 1TB, 2TB; color: white, black
Game Controller | 69
    color: black, white, red, camo; platform: console, PC; connection: wired, wireless
Robot Vacuum | 399
    navigation: gyroscope, lidar, camera; dock: charging, self-emptying; mop: no, yes
Stick Vacuum | 299
    power: corded, cordless; run time: 40 minutes, 60 minutes; color: purple, gray, red
Air Purifier | 229
    room size: small, medium, large; filter: HEPA, HEPA + carbon; smart: no, Wi-Fi
Humidifier | 69
    type: cool mist, warm mist; tank: 2L, 4L, 6L; color: white, black
Space Heater | 79
    type: ceramic, oil-filled, infrared; wattage: 900W, 1500W; color: white, black, gray
Tower Fan | 89
    height: 36 inch, 42 inch; remote: no, yes; color: white, black
Smart Thermostat | 199
    finish: white, black, stainless; sensor: none, 1 room sensor, 2 room sensors
Video Doorbell | 149
    power: battery, wired; resolution: 1080p, 2K; chime: no, yes
Security Camera | 119
    placement: indoor, outdoor; resolution: 1080p, 2K, 4K; power: plug-in, battery, solar
Smart Plug | 25
    pack: 1-pack, 2-pack, 4-pack; energy monitor: no, yes
Smart Light Bulb | 19
    light: warm white, tunable white, full color; base: E26, E12, GU10; pack: 1-pack, 4-pack
Floor Lamp | 119
    finish: brass, black, white; shade: linen, glass, metal; style: arc, tripod, torchiere
Desk Lamp | 59
    color: black, white, wood; light: warm, adjustable; base: weighted, clamp
Coffee Maker | 129
    type: drip, single serve, pour-over; capacity: 1 cup, 5 cups, 12 cups; color: black, stainless, red
Espresso Machine | 699
    type: manual, semi-automatic, super-automatic; grinder: none, built-in; finish: stainless, black
Coffee Grinder | 99
    burr: flat, conical; settings: 18, 40; color: black, white
Electric Kettle | 59
    capacity: 1L, 1.7L; material: stainless steel, glass, plastic; temperature control: no, yes
Stand Mixer | 379
    bowl: 4.5 quart, 5 quart, 6 quart; color: red, white, black, sage
Blender | 149
    jar: 48 oz, 64 oz; motor: 1000W, 1500W; color: black, red, silver
Air Fryer | 119
    capacity: 4 quart, 6 quart, 8 quart; baskets: single, dual; color: black, white
Toaster | 49
    slots: 2-slice, 4-slice; color: stainless, black, cream; style: classic, long slot
Slow Cooker | 69
    capacity: 4 quart, 6 quart, 8 quart; control: manual, programmable
Rice Cooker | 89
    capacity: 3 cups, 5 cups, 10 cups; type: basic, fuzzy logic, induction
Chef's Knife | 89
    blade: 6 inch, 8 inch, 10 inch; steel: german, japanese; handle: wood, composite
Cookware Set | 299
    material: stainless steel, nonstick, copper core; pieces: 5-piece, 10-piece, 12-piece
Cast Iron Skillet | 39
    diameter: 8 inch, 10 inch, 12 inch; finish: pre-seasoned, enameled
Dinnerware Set | 119
    material: porcelain, stoneware, melamine; color: white, speckled gray, blue; settings: 4, 8
Water Bottle | 29
    capacity: 500ml, 750ml, 1L; material: stainless steel, glass, tritan; color: $colors
    lid: straw, chug, twist
Travel Mug | 27
    capacity: 12 oz, 16 oz, 20 oz; color: black, white, sage, coral; lid: slider, leakproof
Lunch Box | 24
    size: small, large; insulation: none, insulated; color: blue, green, gray
Bed Sheet Set | 89
    bed size: twin, full, queen, king; material: percale cotton, sateen cotton, linen
    color: white, gray, sand, sage
Down Comforter | 179
    bed size: twin, queen, king; warmth: light, medium, extra warm
Memory Foam Pillow | 59
    size: standard, queen, king; firmness: soft, medium, firm
Mattress | 899
    bed size: twin, full, queen, king; type: foam, hybrid, innerspring; firmness: plush, medium, firm
Bath Towel Set | 59
    color: white, gray, navy, blush; pieces: 4-piece, 6-piece; material: cotton, turkish cotton
Area Rug | 199
    size: 4x6 ft, 5x8 ft, 8x10 ft; pattern: solid, geometric, vintage; material: wool, jute, polypropylene
Blackout Curtains | 49
    length: 63 inch, 84 inch, 96 inch; color: gray, navy, cream, black; panels: 1, 2
Office Chair | 349
    color: black, gray, blue; material: mesh, fabric, leather; armrests: fixed, adjustable; headrest: no, yes
Standing Desk | 499
    top size: 48x24 inch, 60x30 inch, 72x30 inch; top finish: walnut, oak, white, black; motors: single, dual
Bookshelf | 179
    height: 3 ft, 5 ft, 6 ft; finish: oak, walnut, white, black; material: solid wood, engineered wood, metal
Sofa | 1199
    seats: 2-seat, 3-seat, sectional; upholstery: linen, velvet, leather; color: gray, navy, green, tan
Dining Table | 649
    seats: 4, 6, 8; finish: oak, walnut, white; shape: rectangle, round
Bar Stool | 99
    height: counter, bar; color: black, walnut, white; back: backless, low back
Shoe Rack | 39
    tiers: 3, 4, 5; material: bamboo, metal
Wall Clock | 39
    diameter: 10 inch, 12 inch, 16 inch; style: modern, farmhouse, minimal; movement: silent, ticking
Picture Frame | 19
    size: 5x7, 8x10, 11x14; finish: black, white, natural wood, gold; mat: no mat, white mat
Scented Candle | 28
    scent: cedar, lavender, citrus, vanilla, sea salt; size: small, large; wicks: single, triple
Garden Hose | 45
    length: 25 ft, 50 ft, 100 ft; material: rubber, vinyl, expandable
Cordless Drill | 129
    voltage: 12V, 18V, 20V; batteries: 1, 2; kit: drill only, with bits
Lawn Mower | 449
    power: gas, battery, corded; deck: 16 inch, 20 inch, 21 inch; drive: push, self-propelled
Gas Grill | 549
    burners: 2, 3, 4; fuel: propane, natural gas; side burner: no, yes
Patio Chair Set | 249
    chairs: 2, 4; material: teak, aluminum, wicker; cushion: gray, navy, beige
Planter Pot | 29
    diameter: 6 inch, 10 inch, 14 inch; material: ceramic, terracotta, concrete; color: white, black, natural
Bird Feeder | 34
    style: tube, hopper, platform; capacity: 1 lb, 3 lb
Tent | 229
    capacity: 2-person, 4-person, 6-person; season: 3-season, 4-season; color: green, orange, gray
Sleeping Bag | 119
    temperature rating: 20F, 35F, 50F; fill: down, synthetic; length: regular, long
Hiking Backpack | 149
    volume: 30L, 45L, 65L; color: black, red, blue, olive; frame: internal, frameless
Daypack | 59
    volume: 18L, 24L, 30L; color: $colors; laptop sleeve: no, yes
Camping Stove | 69
    burners: 1, 2; fuel: butane, propane, canister
Headlamp | 35
    brightness: 300 lumens, 600 lumens, 1000 lumens; power: AAA batteries, rechargeable; color: black, orange
Trekking Poles | 79
    material: aluminum, carbon; lock: twist, lever; length: regular, tall
Road Bike | 1499
    frame size: 50cm, 54cm, 56cm, 58cm; groupset: entry, mid, performance; color: black, red, blue
Electric Scooter | 599
    range: 15 miles, 25 miles, 40 miles; color: black, white; tires: solid, pneumatic
Bike Helmet | 69
    size: S, M, L; color: black, white, neon yellow, blue; safety system: standard, MIPS
Yoga Mat | 49
    thickness: 3mm, 5mm, 8mm; material: TPE, natural rubber, cork; color: purple, teal, black, sand
Adjustable Dumbbells | 299
    max weight: 25 lb, 52.5 lb, 90 lb; pair: single, pair
Kettlebell | 49
    weight: 15 lb, 20 lb, 25 lb, 35 lb, 45 lb; material: cast iron, vinyl coated
Resistance Bands | 25
    set: light, medium, heavy, mixed 5-pack; type: loop, tube with handles
Treadmill | 1199
    deck: folding, fixed; motor: 2.5 HP, 3.0 HP, 3.5 HP; screen: LED, 10-inch touch
Tennis Racket | 179
    head size: 98 sq in, 100 sq in, 105 sq in; grip: 4 1/8, 4 1/4, 4 3/8; strung: unstrung, strung
Basketball | 34
    size: 5, 6, 7; surface: indoor, outdoor, indoor/outdoor
Skateboard | 99
    deck width: 7.75 inch, 8.0 inch, 8.25 inch; graphic: plain, wave, skull, floral; wheels: soft, hard
Suitcase | 229
    size: carry-on, medium, large; shell: hardside, softside; color: black, silver, navy, teal
Duffel Bag | 89
    volume: 40L, 60L, 90L; color: black, olive, navy; material: nylon, canvas, leather
Travel Pillow | 29
    fill: memory foam, inflatable, microbeads; color: gray, navy, pink
Wallet | 49
    style: bifold, trifold, card holder; leather: black, brown, tan; RFID blocking: no, yes
Sunglasses | 129
    frame: aviator, round, wayfarer, sport; frame color: black, tortoise, gold
    lens: gray, green, brown polarized, mirrored
Analog Watch | 249
    case: 36mm, 40mm, 42mm; dial: black, white, blue, green; strap: leather, steel, nylon
Necklace | 119
    metal: sterling silver, gold plated, 14k gold; length: 16 inch, 18 inch, 20 inch
    pendant: none, heart, initial
Perfume | 89
    scent: floral, woody, citrus, amber; size: 30ml, 50ml, 100ml
    concentration: eau de toilette, eau de parfum
Electric Toothbrush | 79
    modes: 2, 4, 6; color: white, black, pink; charger: stand, travel case
Hair Dryer | 99
    wattage: 1600W, 1875W; attachments: concentrator, diffuser + concentrator; color: black, pink, white
Electric Shaver | 119
    type: foil, rotary; wet/dry: dry only, wet and dry; trimmer: no, pop-up
Skincare Set | 64
    skin type: dry, oily, combination, sensitive; set size: travel, full size
Board Game | 44
    edition: standard, deluxe; players: 2-4, 2-6, 4-8; language: English, Spanish, French
Jigsaw Puzzle | 24
    pieces: 500, 1000, 1500, 2000; theme: landscape, animals, city, abstract
Building Blocks Set | 59
    pieces: 250, 500, 1200; theme: space, castle, city, vehicles; age: 4+, 8+, 12+
Acoustic Guitar | 349
    body: dreadnought, concert, parlor; top: spruce, cedar, mahogany; electronics: none, pickup
Digital Piano | 699
    keys: 61, 88; action: semi-weighted, hammer; finish: black, white, rosewood
Dog Bed | 69
    size: small, medium, large, extra large; fill: memory foam, polyfill; color: gray, brown, navy
Cat Tree | 99
    height: 3 ft, 5 ft, 6 ft; color: beige, gray, dark gray; platforms: 3, 5
Pet Carrier | 49
    size: small, medium, large; type: soft, hard; color: black, gray, blue
Notebook | 16
    size: A5, B5, A4; ruling: lined, dotted, blank, grid; cover: soft, hard
Fountain Pen | 59
    nib: extra fine, fine, medium, broad; body: black, blue, burgundy, clear; filling: cartridge, converter
Desk Organizer | 34
    material: bamboo, metal mesh, acrylic; compartments: 4, 6, 9
"""


def _parse(text: str) -> tuple[ProductType, ...]:
    products: list[ProductType] = []
    for line in text.strip().splitlines():
        if not line.startswith(" "):
            name, price = line.split(" | ")
            products.append((name, float(price), ()))
            continue
        name, price, dims = products[-1]
        for spec in line.strip().split("; "):
            option, values = spec.split(": ")
            dims += ((option, _SHARED.get(values) or tuple(values.split(", "))),)
        products[-1] = (name, price, dims)
    return tuple(products)


# (product name, typical price in dollars, ((option name, (values...)), ...))
CATALOG: tuple[ProductType, ...] = _parse(_TEXT)
