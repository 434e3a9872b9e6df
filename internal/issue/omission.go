package issue

import (
	"encoding/json"
	"time"

	"github.com/digest/digest/internal/article"
)

// omissionJSON is an Omission as issue.json keeps it: the story by what
// identifies it, not its teaser or image, so that a feed's long tail of
// old items does not swell the file.
type omissionJSON struct {
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	Link      string    `json:"link,omitempty"`
	Source    string    `json:"source,omitempty"`
	Published time.Time `json:"published,omitzero"`
	Reason    Reason    `json:"reason"`
	Original  string    `json:"original,omitempty"` // the ID of the story it duplicates
	SentIn    string    `json:"sent_in,omitempty"`
	Changed   time.Time `json:"changed,omitzero"`
}

// MarshalJSON writes the omission as issue.json keeps it.
func (o Omission) MarshalJSON() ([]byte, error) {
	j := omissionJSON{
		ID: o.Article.ID, Title: o.Article.Title, Link: o.Article.Link, Source: o.Article.Source,
		Published: o.Article.Published, Reason: o.Reason, SentIn: o.SentIn, Changed: o.Changed,
	}
	if o.Original != nil {
		j.Original = o.Original.ID
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads an omission back from issue.json; the article has
// only the fields kept there, and Original only its ID.
func (o *Omission) UnmarshalJSON(b []byte) error {
	var j omissionJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*o = Omission{
		Article: article.Article{ID: j.ID, Title: j.Title, Link: j.Link, Source: j.Source, Published: j.Published},
		Reason:  j.Reason, SentIn: j.SentIn, Changed: j.Changed,
	}
	if j.Original != "" {
		o.Original = &article.Article{ID: j.Original}
	}
	return nil
}
