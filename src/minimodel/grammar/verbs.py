"""The grammar scope (§A13): 20 verbs, 5 tenses, 3 persons.

The order of each tuple defines the ids: VERBS[verb_id], TENSES[tense_id], PERSONS[person_id].
Changing an order changes every label, so append, never reorder.
"""

VERBS = (
    "work", "play", "go", "see", "eat", "write", "read", "run", "speak", "take",
    "give", "make", "come", "know", "think", "drink", "sleep", "swim", "sing", "buy",
)
TENSES = ("infinitive", "present_simple", "past_simple", "past_participle", "future")
PERSONS = ("1sg", "2sg", "3sg")  # I, you, he/she/it

assert len(VERBS) == 20 and len(set(VERBS)) == 20, "the grammar scope has 20 distinct verbs"


def class_id(verb_id, tense_id, person_id):
    """The 300-class label of a verb form: verb-major, then tense, then person."""
    return (verb_id * len(TENSES) + tense_id) * len(PERSONS) + person_id
