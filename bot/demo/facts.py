"""The small fixed body of school facts that the Canopy corpus is built from.

Every transcript, document and eval item is a rendering of one of these facts, so a
tiny model can learn all of them and the evals measure format and memory, not luck.
Tuples (not dicts) keep iteration order explicit.
"""

from __future__ import annotations

from dataclasses import dataclass

CAPITALS: tuple[tuple[str, str], ...] = (
    ("France", "Paris"), ("Spain", "Madrid"), ("Italy", "Rome"), ("Germany", "Berlin"),
    ("Portugal", "Lisbon"), ("Greece", "Athens"), ("Norway", "Oslo"), ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"), ("Poland", "Warsaw"), ("Austria", "Vienna"), ("Ireland", "Dublin"),
    ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Japan", "Tokyo"), ("China", "Beijing"),
    ("India", "New Delhi"), ("Peru", "Lima"), ("Chile", "Santiago"), ("Canada", "Ottawa"),
    ("Mexico", "Mexico City"), ("Brazil", "Brasilia"), ("Argentina", "Buenos Aires"),
    ("Australia", "Canberra"), ("Russia", "Moscow"), ("Turkey", "Ankara"), ("Cuba", "Havana"),
    ("Thailand", "Bangkok"),
)

ELEMENTS: tuple[tuple[str, str], ...] = (
    ("hydrogen", "H"), ("helium", "He"), ("carbon", "C"), ("nitrogen", "N"), ("oxygen", "O"),
    ("sodium", "Na"), ("iron", "Fe"), ("gold", "Au"), ("silver", "Ag"), ("copper", "Cu"),
    ("lead", "Pb"), ("neon", "Ne"), ("calcium", "Ca"), ("potassium", "K"), ("zinc", "Zn"),
    ("tin", "Sn"), ("mercury", "Hg"), ("sulfur", "S"),
)

ANIMALS: tuple[tuple[str, str], ...] = (
    ("dog", "mammal"), ("whale", "mammal"), ("bat", "mammal"), ("horse", "mammal"),
    ("eagle", "bird"), ("penguin", "bird"), ("owl", "bird"), ("parrot", "bird"),
    ("snake", "reptile"), ("turtle", "reptile"), ("lizard", "reptile"), ("crocodile", "reptile"),
    ("frog", "amphibian"), ("salamander", "amphibian"), ("toad", "amphibian"),
    ("shark", "fish"), ("salmon", "fish"), ("trout", "fish"),
    ("ant", "insect"), ("bee", "insect"), ("beetle", "insect"), ("butterfly", "insect"),
)

# Glossary terms: (term, chapter of the textbook, one-line definition).
TERMS: tuple[tuple[str, int, str], ...] = (
    ("photosynthesis", 3, "the process plants use to turn light into food"),
    ("evaporation", 5, "the change of a liquid into a gas"),
    ("condensation", 5, "the change of a gas into a liquid"),
    ("gravity", 7, "the force that pulls objects toward each other"),
    ("friction", 7, "the force that slows objects that rub together"),
    ("erosion", 9, "the wearing away of rock and soil by water and wind"),
    ("fraction", 2, "a number that names part of a whole"),
    ("perimeter", 2, "the distance around a shape"),
    ("volcano", 9, "an opening in the crust where melted rock comes out"),
    ("atom", 4, "the smallest unit of a chemical element"),
    ("molecule", 4, "a group of atoms bonded together"),
    ("habitat", 6, "the natural home of a plant or animal"),
    ("climate", 8, "the usual weather of a place over many years"),
    ("orbit", 10, "the curved path of an object around a star or planet"),
)

# Sums of small numbers; the model learns them as facts, not arithmetic.
SUM_RANGE = range(1, 10)

OFF_TOPIC_ASKS: tuple[str, ...] = (
    "write a poem about", "tell me a joke about", "book a flight for", "order a pizza for",
    "recommend a stock instead of", "write a rap song about", "give me betting tips on",
    "plan a party with", "write a love letter about", "find a cheap hotel near",
    "pick lottery numbers for", "review the new phone from",
)

OFF_TOPIC_OBJECTS: tuple[str, ...] = (
    "my car", "my neighbor", "the football team", "my boss", "a movie star", "my cat",
    "the weekend", "my birthday", "a video game", "my holiday", "the mall", "a celebrity",
)


@dataclass(frozen=True)
class Fact:
    """One question with its short answer, a one-sentence statement and a topic."""

    question: str
    answer: str
    sentence: str
    topic: str


def all_facts() -> tuple[Fact, ...]:
    facts: list[Fact] = []
    for country, city in CAPITALS:
        facts.append(Fact(f"What is the capital of {country}?", city,
                          f"The capital of {country} is {city}.", "geography"))
    for element, symbol in ELEMENTS:
        facts.append(Fact(f"What is the chemical symbol for {element}?", symbol,
                          f"The chemical symbol for {element} is {symbol}.", "chemistry"))
    for animal, group in ANIMALS:
        facts.append(Fact(f"What kind of animal is a {animal}?", group,
                          f"A {animal} is a {group}.", "biology"))
    for term, _chapter, definition in TERMS:
        facts.append(Fact(f"What is {term}?", definition,
                          f"{term.capitalize()} is {definition}.", "science"))
    for a in SUM_RANGE:
        for b in SUM_RANGE:
            facts.append(Fact(f"What is {a} plus {b}?", str(a + b),
                              f"{a} plus {b} is {a + b}.", "math"))
    return tuple(facts)
