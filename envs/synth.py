"""Word lists and id helpers shared by the seeded DB generators; no domain logic, no global RNG."""

from __future__ import annotations

import gc
import itertools
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

__all__ = [
    "CITIES",
    "FIRST_NAMES",
    "LAST_NAMES",
    "STREETS",
    "IdPool",
    "Person",
    "address_fields",
    "cumulative",
    "gc_paused",
    "pick_city",
    "random_date",
    "user_handles",
]

FIRST_NAMES = (
    "Aaliyah", "Aarav", "Abdul", "Ada", "Adrian", "Aiko", "Akira", "Alejandro", "Amara", "Amir",
    "Ana", "Andre", "Anika", "Arjun", "Astrid", "Ayesha", "Beatriz", "Ben", "Bianca", "Bo",
    "Camila", "Carlos", "Chen", "Chidi", "Chloe", "Dalia", "Daniel", "Dara", "Diego", "Dmitri",
    "Elena", "Eli", "Elif", "Emeka", "Emma", "Esther", "Farah", "Felix", "Fiona", "Gabriel",
    "Grace", "Hana", "Hassan", "Hector", "Helga", "Hiro", "Ines", "Isaac", "Ivan", "Jada",
    "Jamal", "Jana", "Javier", "Jin", "Joao", "Jonas", "Julia", "Kai", "Kamala", "Karim",
    "Kavya", "Keanu", "Kenji", "Kofi", "Lara", "Leila", "Leo", "Lina", "Luca", "Lucia",
    "Maya", "Malik", "Marco", "Maria", "Mateo", "Mei", "Mila", "Mohammed", "Nadia", "Naveen",
    "Nia", "Niko", "Noor", "Nora", "Olga", "Omar", "Oscar", "Pablo", "Parisa", "Priya",
    "Quinn", "Rafael", "Rania", "Ravi", "Rosa", "Ruth", "Sakura", "Samir", "Sana", "Santiago",
    "Selin", "Sergei", "Shira", "Sofia", "Sunil", "Tariq", "Tess", "Theo", "Tomas", "Uma",
    "Valentina", "Vera", "Victor", "Wei", "Xavier", "Yara", "Yusuf", "Zainab", "Zoe", "Zoran",
)  # fmt: skip

LAST_NAMES = (
    "Abbott", "Adeyemi", "Alvarez", "Andersen", "Bakker", "Banerjee", "Barros", "Bauer", "Bennett",
    "Bianchi", "Brooks", "Campbell", "Castillo", "Chowdhury", "Cohen", "Costa", "Dubois", "Duarte",
    "Eriksson", "Esposito", "Farouk", "Fernandes", "Fischer", "Fitzgerald", "Fujita", "Gallagher",
    "Gomez", "Gupta", "Haddad", "Hansen", "Hartmann", "Hayes", "Horvath", "Ibrahim", "Iyer",
    "Jaramillo", "Jensen", "Kaplan", "Kaur", "Kim", "Kowalczyk", "Kruger", "Lam", "Larsen",
    "Lindqvist", "Lopez", "Mahmoud", "Marchetti", "Medina", "Mendes", "Moreau", "Morales",
    "Murphy", "Nakamura", "Nash", "Nair", "Novak", "Obi", "Okafor", "Olsen", "Ortega", "Park",
    "Patel", "Pereira", "Petrov", "Popescu", "Quinlan", "Ramos", "Reddy", "Reyes", "Rivera",
    "Romano", "Rosen", "Saito", "Salazar", "Santana", "Schmidt", "Sharma", "Silva", "Sokolov",
    "Suzuki", "Tanaka", "Torres", "Tran", "Turner", "Uddin", "Vargas", "Vasquez", "Vogel",
    "Wagner", "Walsh", "Watanabe", "Weiss", "Wong", "Wright", "Yamamoto", "Yilmaz", "Young",
    "Zhang", "Zhou", "Ziegler", "Zimmerman",
)  # fmt: skip

# (city, state, first three digits of its zip codes, relative weight by population)
CITIES = (
    ("New York", "NY", "100", 10), ("Los Angeles", "CA", "900", 8), ("Chicago", "IL", "606", 6),
    ("Houston", "TX", "770", 6), ("Phoenix", "AZ", "850", 5), ("Philadelphia", "PA", "191", 5),
    ("San Antonio", "TX", "782", 4), ("San Diego", "CA", "921", 4), ("Dallas", "TX", "752", 4),
    ("San Jose", "CA", "951", 3), ("Austin", "TX", "787", 3), ("Jacksonville", "FL", "322", 3),
    ("Fort Worth", "TX", "761", 3), ("Columbus", "OH", "432", 3), ("Charlotte", "NC", "282", 3),
    ("Indianapolis", "IN", "462", 3), ("San Francisco", "CA", "941", 3), ("Seattle", "WA", "981", 3),
    ("Denver", "CO", "802", 3), ("Washington", "DC", "200", 3), ("Boston", "MA", "021", 3),
    ("Nashville", "TN", "372", 2), ("Portland", "OR", "972", 2), ("Las Vegas", "NV", "891", 2),
    ("Detroit", "MI", "482", 2), ("Memphis", "TN", "381", 2), ("Louisville", "KY", "402", 2),
    ("Baltimore", "MD", "212", 2), ("Milwaukee", "WI", "532", 2), ("Albuquerque", "NM", "871", 2),
    ("Tucson", "AZ", "857", 2), ("Sacramento", "CA", "958", 2), ("Kansas City", "MO", "641", 2),
    ("Atlanta", "GA", "303", 2), ("Miami", "FL", "331", 2), ("Raleigh", "NC", "276", 2),
    ("Omaha", "NE", "681", 1), ("Minneapolis", "MN", "554", 2), ("Tampa", "FL", "336", 2),
    ("New Orleans", "LA", "701", 1), ("Cleveland", "OH", "441", 1), ("Pittsburgh", "PA", "152", 1),
    ("Salt Lake City", "UT", "841", 1), ("Orlando", "FL", "328", 1), ("St. Louis", "MO", "631", 1),
    ("Madison", "WI", "537", 1), ("Boise", "ID", "837", 1), ("Richmond", "VA", "232", 1),
    ("Buffalo", "NY", "142", 1), ("Spokane", "WA", "992", 1), ("Anchorage", "AK", "995", 1),
    ("Honolulu", "HI", "968", 1), ("Burlington", "VT", "054", 1), ("Providence", "RI", "029", 1),
    ("Hartford", "CT", "061", 1), ("Charleston", "SC", "294", 1), ("Des Moines", "IA", "503", 1),
    ("Oklahoma City", "OK", "731", 1), ("Little Rock", "AR", "722", 1), ("Birmingham", "AL", "352", 1),
    ("Cheyenne", "WY", "820", 1), ("Billings", "MT", "591", 1), ("Fargo", "ND", "581", 1),
    ("Sioux Falls", "SD", "571", 1), ("Wilmington", "DE", "198", 1), ("Manchester", "NH", "031", 1),
)  # fmt: skip
_CITY_WEIGHTS = tuple(c[3] for c in CITIES)
_CITY_CUM = tuple(itertools.accumulate(_CITY_WEIGHTS))

STREETS = (
    "Maple Avenue", "Oak Street", "Cedar Lane", "Pine Road", "Elm Street", "Willow Way",
    "Birch Drive", "Aspen Court", "Juniper Trail", "Magnolia Boulevard", "Spruce Street",
    "Chestnut Avenue", "Sycamore Road", "Hawthorn Lane", "Laurel Drive", "Poplar Street",
    "Lakeview Drive", "Riverside Avenue", "Hillcrest Road", "Meadow Lane", "Sunrise Boulevard",
    "Harbor Street", "Bayview Avenue", "Canyon Road", "Prairie Way", "Summit Avenue",
    "Valley Road", "Park Place", "Market Street", "Mill Road", "Church Street", "Station Road",
    "College Avenue", "Union Street", "Franklin Avenue", "Lincoln Street", "Jefferson Road",
    "Highland Avenue", "Orchard Lane", "Garden Street", "Forest Avenue", "Ridge Road",
    "Kingston Way", "Harrison Street", "Grand Avenue", "Water Street", "Beacon Street",
    "Mission Street", "Broad Street", "Front Street",
)  # fmt: skip


def cumulative(weights: Sequence[float]) -> tuple[float, ...]:
    """Running totals of ``weights``, for ``rng.choices(..., cum_weights=...)`` in hot loops."""
    return tuple(itertools.accumulate(weights))


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of acyclic records.

    Each full collection walks every live object, so with it on, building a large DB costs
    more than linear time; the records built here hold no reference cycles.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Person:
    """A first and last name pair drawn from the lists."""

    __slots__ = ("first", "last")

    def __init__(self, rng: random.Random) -> None:
        self.first = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]
        self.last = LAST_NAMES[rng.randrange(len(LAST_NAMES))]


def pick_city(rng: random.Random) -> tuple[str, str, str, int]:
    """A city weighted by size: (city, state, zip prefix, weight)."""
    return rng.choices(CITIES, cum_weights=_CITY_CUM)[0]


def address_fields(rng: random.Random, blank_line2: float = 0.0) -> dict[str, str]:
    """One US street address as plain fields (address1, address2, city, country, state, zip)."""
    city, state, prefix, _ = pick_city(rng)
    roll = rng.random()
    if roll < blank_line2:
        line2 = ""
    elif roll < 0.55:
        line2 = f"Suite {rng.randint(100, 999)}"
    elif roll < 0.85:
        line2 = f"Apt {rng.randint(1, 30)}{'ABCDEF'[rng.randrange(6)]}"
    else:
        line2 = f"Unit {rng.randint(1, 400)}"
    return {
        "address1": f"{rng.randint(10, 9999)} {STREETS[rng.randrange(len(STREETS))]}",
        "address2": line2,
        "city": city,
        "country": "USA",
        "state": state,
        "zip": f"{prefix}{rng.randint(0, 99):02d}",
    }


def random_date(rng: random.Random, first_year: int, last_year: int) -> str:
    """A date YYYY-MM-DD between 1 Jan of ``first_year`` and 28 Dec of ``last_year``."""
    return f"{rng.randint(first_year, last_year)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


class IdPool:
    """Draws ids that are unique within the pool, never one that is reserved."""

    __slots__ = ("_rng", "_used")

    def __init__(self, rng: random.Random, reserved: tuple[str, ...] = ()) -> None:
        self._rng = rng
        self._used: set[str] = set(reserved)

    def digits(self, prefix: str, n: int) -> str:
        """``prefix`` + ``n`` digits, the first one nonzero, unique in this pool."""
        low, high = 10 ** (n - 1), 10**n
        while True:
            value = f"{prefix}{self._rng.randrange(low, high)}"
            if value not in self._used:
                self._used.add(value)
                return value

    def chars(self, alphabet: str, n: int) -> str:
        """``n`` characters from ``alphabet``, unique in this pool."""
        rng = self._rng
        while True:
            value = "".join(rng.choices(alphabet, k=n))
            if value not in self._used:
                self._used.add(value)
                return value

    def take(self, value: str) -> bool:
        """Claim ``value``; False when it is taken or reserved."""
        if value in self._used:
            return False
        self._used.add(value)
        return True


def user_handles(rng: random.Random, names: IdPool, first: str, last: str) -> tuple[str, str]:
    """A unique user id ('ana_lopez_1234') and email ('ana.lopez5678@example.com') for a person."""
    while True:
        user_id = f"{first}_{last}_{rng.randint(1000, 9999)}"
        if names.take(user_id):
            break
    while True:
        email = f"{first}.{last}{rng.randint(1000, 9999)}@example.com"
        if names.take(email):
            return user_id, email
